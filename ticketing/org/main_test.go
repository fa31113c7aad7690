package org_test

import (
	"os"
	"testing"

	"hotline/deploy/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
