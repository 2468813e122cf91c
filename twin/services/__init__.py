"""The twin's services: each a small class wired to one bus connection; ``twin up`` runs them together."""
