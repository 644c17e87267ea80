"""One person's data: find it, export it, erase it (GDPR access and erasure).

``kinds`` says where Signalbox keeps something about a person, one entry per kind of row;
``export`` writes every kind as JSON and CSV into a ZIP, streamed; ``erase`` anonymises what the
figures need and deletes the rest. The admin (the user's page), ``manage.py signalbox_person``
and any other caller use these services, which check ``accounts.roles`` themselves.
"""

from .erase import ErasureRefused, person_erase
from .export import person_export
from .people import Person, PersonNotFound, person_find, person_load

__all__ = ["ErasureRefused", "Person", "PersonNotFound", "person_erase", "person_export", "person_find", "person_load"]
