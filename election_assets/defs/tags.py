"""The prefix of every run tag this project sets (the loop's trigger, the process a run records, the polls feed's
file), so one prefix tells them from Dagster's own tags and the champion asset can collect them."""

RUN_TAG_PREFIX = "election/"
