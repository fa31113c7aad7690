package main

// TelephonyConfig holds the settings of SIP intake, ACD, recordings and the dialer.
type TelephonyConfig struct{}

// Rows of this feature's settings are appended to `settings` in an init function here (see config.go).
