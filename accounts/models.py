"""Accounts keep no tables of their own (lockouts are django-axes'); this module makes Django send
``post_migrate`` for the app, which ``AccountsConfig.ready`` uses to set up the staff roles."""
