"""What ops does when the ledger announces something (connected in ``OpsConfig.ready``)."""

from __future__ import annotations

from django.utils import timezone

from .models import Counter
from .services import counters_add


def lease_sweeps_count(sender, *, counts: dict[str, int], **kwargs) -> None:
    """Add the deliveries a lease sweep settled to the ``lease_sweeps:<outcome>`` counters.

    A one-row UPDATE per outcome, after the sweep committed, rather than a task: a counter that
    waits in a queue lags, and one lost with the queue undercounts for good.
    """
    counters_add(amounts={Counter.LEASE_SWEEPS_PREFIX + outcome: n for outcome, n in counts.items()},
                 now=timezone.now())
