"""What a script would do, before it runs: risk, impact on the live data, simulation, checks."""
