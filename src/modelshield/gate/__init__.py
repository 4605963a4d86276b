"""The gate: one policy and one command for every pillar, as a CI step.

``modelshield ci`` (:func:`modelshield.gate.ci.run_ci`) runs each pillar the policy
configures (the scan of the model paths, the dependency audit, the manifest verification,
the assessment) once, merges their findings into one report with each result's pillar, adds
the policy's own findings (entries that match nothing, expired advisory ignores:
:mod:`modelshield.gate.policy_check`), and applies a baseline of accepted findings
(:mod:`modelshield.gate.baseline`). ``modelshield init`` writes a starter policy for a
project (:mod:`modelshield.gate.init`).

The gate imports the pillars; no pillar imports the gate, and the gate never renders.
"""
