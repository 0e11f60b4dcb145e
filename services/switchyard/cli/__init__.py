"""The `switchyard` command: run the suite on this machine and talk to the router."""
