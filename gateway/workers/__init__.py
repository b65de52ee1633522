"""The replica's background workers: the event hub and the change watch."""
