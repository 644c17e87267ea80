"""The inbox: in-app notifications and broadcasts, their services, reads, views, live stream and tasks."""
