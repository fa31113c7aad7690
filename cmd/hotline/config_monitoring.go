package main

// MonitoringConfig holds the settings of monitoring records (personal-data key, statutory clocks).
type MonitoringConfig struct{}

// Rows of this feature's settings are appended to `settings` in an init function here (see config.go).
