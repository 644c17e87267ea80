"""Demo data for trying Signalbox (``manage.py seed_demo``): people, logins, the shop, weeks of
delivery history, audiences, templates, campaigns and the demo trigger. Not part of the domain:
it uses the notifications app as any other project would."""
