"""Signal triggers: "when an order is paid, notify its customer", configured in the admin.

Apps make models and signals bindable with :func:`register_model` and :func:`register_signal`
(``registry``). Receivers (``receivers``) check the active triggers — cached per process and
reloaded when any process changes them (``cache``) — and enqueue ``trigger_fire_task``
(``tasks``) after commit; the task resolves recipients and plans the deliveries (``services``).
"""

from .registry import (
    RegisteredModel,
    RegisteredSignal,
    instance_fields,
    model_choices,
    recipient_lookup,
    recipient_path_choices,
    register_model,
    register_signal,
    signal_choices,
    subject_fields,
    subject_recipient_paths,
)


def connect_receivers() -> None:
    """Connect the trigger receivers; called once from ``NotificationsConfig.ready()``."""
    from .receivers import connect_receivers as connect

    connect()


__all__ = [
    "RegisteredModel", "RegisteredSignal", "connect_receivers", "instance_fields", "model_choices",
    "recipient_lookup", "recipient_path_choices", "register_model", "register_signal",
    "signal_choices", "subject_fields", "subject_recipient_paths",
]
