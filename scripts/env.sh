# Sourced by the scripts: environment for running AkiDB from this checkout.
true
