"""The shared service runtime: one copy of settings, logging, telemetry, server and channels.

Every Switchyard service builds on these modules; none keeps its own copy.
"""
