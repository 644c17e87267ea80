"""Recipients: their preferences, the preference centre and unsubscribe pages, and the reads that
decide their channels (``selectors.recipients_for_decisions``)."""
