"""Screening values of a patient who meets every criterion, as a coordinator types them.

The demo builds its synthetic cohort from these (changing one value makes a screen failure);
the tests use the same values.
"""

__all__ = ["ELIGIBLE_NATARS", "ELIGIBLE_TNT"]

# A patient who meets every NATARS / TNT-STS screening criterion.
ELIGIBLE_NATARS = {
    "age_years": "56",
    "histology_confirmed": "yes",
    "histology": "DDLPS",
    "prior_resection_or_therapy": "no",
    "second_malignancy_history": "no",
    "mdm2_cdk4_ihc": "yes",
    "fnclcc_grade": "3",
    "tumour_size_cm": "14.5",
    "crosses_diaphragm": "no",
    "mdt_r0_r1_possible": "yes",
    "multi_organ_dysfunction": "no",
    "mdt_tolerates_treatment": "yes",
    "asa_class": "2",
    "informed_consent": "yes",
    "origin": "retroperitoneum",
    "protrudes_into_chest": "no",
    "metastasis": "no",
    "prior_anthracycline_ifosfamide_targeted": "no",
    "severe_contraindication_6m": "no",
    "infection_or_bleeding_surgery_1m": "no",
    "persistent_organ_dysfunction": "no",
    "pregnancy_or_no_contraception": "no",
    "psychological_condition": "no",
}
ELIGIBLE_TNT = {
    "age_years": "61",
    "primary_extremity_sts": "true",
    "fnclcc_grade": "G3",
    "tumour_size_cm": "8",
    "deep_tumour": "true",
    "mdt_neoadjuvant_rt": "yes",
    "ecog": "1",
    "histology_confirmed_sts": "true",
    "histology": "myxofibrosarcoma",
    "tolerates_rt_and_ai": "yes",
    "major_organ_function_normal": "yes",
    "unplanned_excision_elsewhere": "no",
    "gross_tumour_present": "yes",
    "ai_contraindication": "no",
    "other_malignancy_5y": "no",
    "curable_by_simple_excision": "no",
    "prior_rt_same_site": "no",
    "metastasis_m1_or_n1": "no",
    "severe_comorbidity": "no",
    "prior_chemotherapy": "no",
}
