"""What leaves the database as files: calendars (iCalendar), SDTM datasets, and the one atomic
writer every such file goes through."""
