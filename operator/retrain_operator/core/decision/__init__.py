"""The decision, as ordered sub-decisions over one round's working state (core/decide.py runs them).

trigger (schedule | manual | drift, guards) → run (adopt, follow) → record (version, gates,
history, pruning) → drift (checks and their results) → serve (stable, canary rollout) →
verify (is the current version still what was recorded, is it served) → summary (conditions,
phase). Each module owns the conditions it sets; `summary` computes `Ready` from them.
"""
