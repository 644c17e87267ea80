"""Outbound signals for integrators. They announce; they never carry work of ours.

``notification_read``
    Sent after inbox notifications were marked read by their recipient.
    Arguments: ``sender`` = ``Notification``, ``user`` (the recipient), ``notification_ids``
    (list of ids that changed from unread to read), ``broadcast_ids`` (broadcasts the user read
    now); when nothing changed, nothing is sent.

``notification_sent``
    Sent after a batch of deliveries was accepted by their providers and recorded ``sent``.
    Arguments: ``sender`` = ``Delivery``, ``delivery_ids`` (list of ids).

``delivery_status_changed``
    Sent after a delivery's status moved (sent, deferred, failed, unknown, delivered, opened...).
    Arguments: ``sender`` = ``Delivery``, ``delivery_id``, ``status`` (the new status).

``delivery_statuses_changed``
    The same moves as ``delivery_status_changed``, once per batch: ``sender`` = ``Delivery``,
    ``changes`` (list of ``(delivery_id, status)`` in the order they happened). Sent right after
    the per-delivery signals; listeners that act per batch take this one (rows that must commit
    with the moves belong to ``delivery_statuses_recording``).

``delivery_statuses_recording``
    The same moves again, but sent *inside* the transaction that writes them, before it commits:
    ``sender`` = ``Delivery``, ``changes`` as above. For receivers that keep an outbox of the
    moves (outbound webhooks): their rows commit, or roll back, together with the moves, so a
    crash between the commit and an after-commit signal cannot lose one. A receiver writes in a
    savepoint of its own (``transaction.atomic()``); one that raises is logged and the moves
    still commit.

``journey_goal_reached``
    Sent after journey enrollments ended because their person reached a goal. Arguments:
    ``sender`` = ``JourneyEnrollment``, ``enrollment_ids``, ``goal`` (the goal's name).

``deliveries_batch_recorded``
    Sent after a send task recorded the outcomes of the batch it claimed (sent, deferred, failed,
    in flight...). Arguments: ``sender`` = ``Delivery``, ``delivery_ids`` (the claimed ids),
    ``run_ids`` (sorted ids of the campaign runs those deliveries belong to; may be empty).
    Campaigns listen to finish runs with nothing left to send.

``deliveries_swept``
    Sent after the lease sweep settled deliveries whose worker stopped mid-batch. Arguments:
    ``sender`` = ``Delivery``, ``counts`` (how many it settled, by outcome: ``requeued`` never left
    and wait again, ``resent`` were in flight and go again under at-least-once, ``unknown`` were in
    flight and are now "outcome unknown"). Not sent when it settled none. ``ops`` counts these for
    ``/metrics``.

``campaign_finished``
    Sent after a campaign run finished (every delivery reached a final state) or was cancelled.
    Arguments: ``sender`` = ``CampaignRun``, ``run_id``, ``campaign_id``, ``status``
    ("completed" or "cancelled").

All but ``delivery_statuses_recording`` are sent after the transaction that made the change
committed.
"""

from django.dispatch import Signal

notification_read = Signal()
notification_sent = Signal()
delivery_status_changed = Signal()
campaign_finished = Signal()
delivery_statuses_changed = Signal()
journey_goal_reached = Signal()
deliveries_batch_recorded = Signal()
deliveries_swept = Signal()
delivery_statuses_recording = Signal()
