"""The dashboard has no models of its own.

This module exists so that Django sends ``post_migrate`` for the dashboard app (it skips apps
without a models module); ``DashboardConfig.ready`` hangs the staff-role setup on that signal.
"""
