"""Admin for the notifications models, split per domain (STYLE.md: no 3,000-line admin.py)."""

from . import ledger  # noqa: F401
from .ledger import ReadOnlyAdminMixin  # noqa: F401  (used by other apps' admins)
from . import audiences  # noqa: F401
from . import campaigns  # noqa: F401
from . import triggers  # noqa: F401
from . import templates  # noqa: F401
from . import broadcasts  # noqa: F401
from . import journeys  # noqa: F401
from . import webhooks  # noqa: F401
