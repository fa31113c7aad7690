package migrations

import "io/fs"

// UseFiles makes the package read its migrations from fsys until the returned function restores the embedded
// ones: a binary with other files than this one, for the tests of Check and Up.
func UseFiles(fsys fs.FS) (restore func()) {
	source = fsys
	return func() { source = embedded }
}
