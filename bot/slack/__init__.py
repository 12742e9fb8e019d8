"""The Slack front-end (issue 11, in progress): formatting first; the Socket Mode app comes next."""
