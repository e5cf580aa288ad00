"""Notifications (spec.notify), pure: which of a decision's Events go to which webhook, what the Event
carries so the delivery survives a restart, the bodies sent, and when to try again.

The shell (adapters/notifier.py) does the I/O: it posts, retries and marks each Event delivered.
"""
