// Parse .ics files with ical.js (Mozilla's parser, the one Thunderbird uses) and print, as one
// JSON object keyed by file name, what a calendar client takes from each file: per VEVENT its
// UID, SUMMARY, DTSTART/DTEND (local ISO text, date-only or not, TZID, and the UTC instant
// computed from the file's own VTIMEZONE), SEQUENCE, STATUS and alarm triggers; and the TZIDs
// of the VTIMEZONE components. Usage: node parse_ics.mjs FILE.ics [FILE.ics ...]
// A file ical.js cannot parse makes the script exit 1 with the parser's message on stderr.

import { readFileSync } from "node:fs";

import ICAL from "ical.js";

function timeOf(property) {
  if (!property) {
    return null;
  }
  const value = property.getFirstValue();
  const tzid = property.getParameter("tzid") ?? null;
  // The instant is only meaningful when the TZID resolved to a VTIMEZONE of the file (or is
  // UTC): a floating or unresolved time would silently be read as UTC.
  const resolved =
    !value.isDate && (value.zone === ICAL.Timezone.utcTimezone || (tzid && value.zone?.tzid === tzid));
  return {
    value: value.toString(),
    date_only: value.isDate,
    tzid,
    utc: resolved ? value.convertToZone(ICAL.Timezone.utcTimezone).toString() : null,
  };
}

function parseFile(path) {
  const root = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));
  const vtimezones = root.getAllSubcomponents("vtimezone");
  // Register the file's zones before any DTSTART is decoded, as a client importing it does.
  ICAL.TimezoneService.reset();
  for (const vtimezone of vtimezones) {
    ICAL.TimezoneService.register(vtimezone);
  }
  const vevents = root.getAllSubcomponents("vevent").map((vevent) => ({
    uid: vevent.getFirstPropertyValue("uid"),
    summary: vevent.getFirstPropertyValue("summary"),
    dtstart: timeOf(vevent.getFirstProperty("dtstart")),
    dtend: timeOf(vevent.getFirstProperty("dtend")),
    sequence: vevent.getFirstPropertyValue("sequence"),
    status: vevent.getFirstPropertyValue("status"),
    categories: vevent.getFirstPropertyValue("categories"),
    alarms: vevent.getAllSubcomponents("valarm").map((valarm) => ({
      action: valarm.getFirstPropertyValue("action"),
      trigger: valarm.getFirstPropertyValue("trigger").toString(),
    })),
  }));
  return {
    prodid: root.getFirstPropertyValue("prodid"),
    version: root.getFirstPropertyValue("version"),
    vtimezones: vtimezones.map((vtimezone) => vtimezone.getFirstPropertyValue("tzid")),
    vevents,
  };
}

const result = {};
for (const path of process.argv.slice(2)) {
  try {
    result[path] = parseFile(path);
  } catch (error) {
    process.stderr.write(`${path}: ${error.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(result, null, 1) + "\n");
