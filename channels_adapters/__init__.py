"""Channel adapters: one module per channel behind one base class (DESIGN.md "Channels")."""
