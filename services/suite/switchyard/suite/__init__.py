"""The suite on one machine: `switchyard up` starts the four services (plan, supervisor, demo)."""
