DROP TABLE alert_log;
DROP TABLE behavior_drift;
DROP TABLE behavior_baselines;
DROP TABLE behavior_profiles;
DROP FUNCTION prevent_baseline_update();
DROP FUNCTION validate_baseline_description();
