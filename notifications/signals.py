"""Outbound signals for integrators. They announce; they never carry work of ours.

``notification_read``
    Sent after inbox notifications were marked read by their recipient.
    Arguments: ``sender`` = ``Notification``, ``user`` (the recipient), ``notification_ids``
    (list of ids that changed from unread to read; empty changes send nothing).

``notification_sent``, ``delivery_status_changed`` and ``campaign_finished`` are documented in the
README with the delivery engine.
"""

from django.dispatch import Signal

notification_read = Signal()
