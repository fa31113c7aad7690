package web

import (
	"os"
	"testing"

	"hotline/deploy/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }
