import pytest

from channels_adapters.locmem import LocmemChannel

LOCMEM = "channels_adapters.locmem.LocmemChannel"


@pytest.fixture
def locmem_channels(settings):
    """Email and SMS through the in-memory twin (``LocmemChannel.outbox``), the real inbox channel."""
    LocmemChannel.outbox.clear()
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": LOCMEM, "OPTIONS": {}},
        "sms": {"BACKEND": LOCMEM, "OPTIONS": {}},
        "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    }
    yield settings
    LocmemChannel.outbox.clear()
