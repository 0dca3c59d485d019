"""Scheduled work: what runs on a timer, per installed workspace, outside any Slack request."""
