package tenant

import (
	"regexp"
	"strings"
)

// Sep separates a tenant from a name in a stored name.
const Sep = "."

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// fnRE is Lambda's function name.
	fnRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ValidFunction reports whether name is a function name as Lambda allows
// it: 1 to 64 letters, digits, '-' or '_'.
func ValidFunction(name string) bool { return fnRE.MatchString(name) }

// ValidStored reports whether stored is a function's stored name: a valid
// function name, with a valid tenant prefix or none. Anything that builds
// a path or a key from a stored name checks it with this first.
func ValidStored(stored string) bool {
	t, name := Split(stored)
	return (t == "" && !strings.Contains(stored, Sep) || Valid(t)) && ValidFunction(name)
}

// Valid reports whether t may name a tenant: 1 to 32 lower-case letters,
// digits, '-' or '_', starting with a letter or digit. The root tenant ""
// is not a name one can give.
func Valid(t string) bool { return nameRE.MatchString(t) }

// Qualify returns the stored name of tenant t's name.
func Qualify(t, name string) string {
	if t == "" {
		return name
	}
	return t + Sep + name
}

// Split returns a stored name's tenant and the name that tenant uses.
func Split(stored string) (t, name string) {
	if i := strings.Index(stored, Sep); i >= 0 {
		return stored[:i], stored[i+1:]
	}
	return "", stored
}

// Bare is the name a stored name's tenant uses (what the function itself
// sees as AWS_LAMBDA_FUNCTION_NAME).
func Bare(stored string) string {
	_, name := Split(stored)
	return name
}

// Owns reports whether a stored name is tenant t's (t not root).
func Owns(t, stored string) bool {
	return t != "" && strings.HasPrefix(stored, t+Sep)
}

// Unqualify returns the name tenant t uses for a stored name it owns, and
// false for another's.
func Unqualify(t, stored string) (string, bool) {
	if t == "" {
		return stored, true
	}
	if !Owns(t, stored) {
		return "", false
	}
	return stored[len(t)+len(Sep):], true
}

// StripText removes tenant t's prefix from stored names quoted in a
// message (an error's text), so a tenant reads its own names.
func StripText(t, s string) string {
	if t == "" {
		return s
	}
	return strings.ReplaceAll(s, t+Sep, "")
}
