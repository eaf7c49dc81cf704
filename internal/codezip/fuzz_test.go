package codezip

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// fuzzLimits keep each fuzz iteration cheap while still letting the size
// and count limits trigger.
var fuzzLimits = Limits{MaxZipped: 1 << 20, MaxUnzipped: 64 << 10, MaxFiles: 32}

// addSeeds gives the fuzzers real archives to mutate: a good tree with
// symlinks, and the main attack shapes, so mutations start next to the
// interesting checks rather than at random bytes.
func addSeeds(f *testing.F) {
	sym := fs.ModeSymlink | 0o777
	seeds := [][]byte{
		buildZip(f, zent{name: "index.js", body: "exports.handler = async () => 1\n"},
			zent{name: "bin/", mode: fs.ModeDir | 0o755},
			zent{name: "bin/run", mode: 0o755, body: "#!/bin/sh\n"},
			zent{name: "lib/a/b.txt", body: "b", method: methodStore},
			zent{name: "link", mode: sym, body: "lib/a/b.txt"},
			zent{name: "lib/up", mode: sym, body: "../index.js"}),
		buildZip(f, zent{name: "../../etc/x", body: "pwn"}),
		buildZip(f, zent{name: "a", mode: sym, body: ".."}, zent{name: "a/escape", body: "pwn"}),
		buildZip(f, zent{name: "s", mode: sym, body: "."}, zent{name: "t", mode: sym, body: "s/.."}),
		buildZip(f, zent{name: "f", body: "1"}, zent{name: "f", body: "2"}),
		buildZip(f, zent{name: "big", body: string(make([]byte, 100<<10))}),
		buildZip(f, zent{name: "p", mode: fs.ModeNamedPipe | 0o644}),
		buildZip(f),
	}
	for _, s := range seeds {
		f.Add(s)
	}
}

// FuzzValidate: Validate must never panic, every refusal must wrap
// ErrInvalid, and the entry-count pre-scan must agree with archive/zip.
func FuzzValidate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Validate(bytes.NewReader(data), int64(len(data)), fuzzLimits)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Validate refusal %q does not wrap ErrInvalid", err)
		}
		if zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data))); zerr == nil {
			n, ok := countEntries(bytes.NewReader(data), int64(len(data)), 1<<20)
			if ok && n < len(zr.File) {
				// Under-counting would let a huge directory past the
				// pre-scan (archive/zip's own count still catches it,
				// but then the pre-scan is pointless).
				t.Fatalf("countEntries = %d, archive/zip found %d entries", n, len(zr.File))
			}
		}
	})
}

// FuzzExtract: Extract agrees with Validate, never writes outside its
// directory, and whatever it writes keeps the promised shape.
func FuzzExtract(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		verr := Validate(bytes.NewReader(data), int64(len(data)), fuzzLimits)
		dir, check := sandbox(t)
		err := Extract(t.Context(), bytes.NewReader(data), int64(len(data)), dir, fuzzLimits)
		check()
		checkTreeSafe(t, dir)
		switch {
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Fatalf("Extract failed without blaming the archive: %v", err)
		case (err == nil) != (verr == nil):
			t.Fatalf("Validate and Extract disagree: Validate=%v Extract=%v", verr, err)
		}
	})
}

// FuzzExtractRecipe complements FuzzExtract: mutating raw zip bytes mostly
// breaks CRCs, so it rarely produces new valid symlink layouts. Here the
// input is a recipe, one entry per line: "f name", "x name" (executable),
// "d name" or "l name>target"; it is turned into a well-formed zip, so the
// fuzzer explores names and symlink graphs directly. The kernel is the
// oracle: after extraction every symlink must resolve inside the tree.
func FuzzExtractRecipe(f *testing.F) {
	for _, s := range []string{
		"f index.js\nd lib/\nl link>index.js\nl lib/up>../index.js",
		"l s>.\nl t>s/..",
		"l a>..\nf a/escape",
		"d d/e/\nl d/s>..\nl d/t>s/../d",
		"l a>b\nl b>c\nl c>.\nl z>a/a/a/..",
		"f ../x\nf /abs\nf a\\b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, recipe string) {
		var entries []zent
		for _, line := range strings.Split(recipe, "\n") {
			if len(line) < 2 || len(entries) >= 16 {
				continue
			}
			kind, rest := line[0], line[2:]
			body := rest
			if strings.HasSuffix(rest, "/") {
				body = "" // archive/zip cannot write data to a directory name
			}
			switch kind {
			case 'f':
				entries = append(entries, zent{name: rest, body: body})
			case 'x':
				entries = append(entries, zent{name: rest, body: body, mode: 0o755})
			case 'd':
				if !strings.HasSuffix(rest, "/") {
					rest += "/"
				}
				entries = append(entries, zent{name: rest, mode: fs.ModeDir | 0o755})
			case 'l':
				name, target, _ := strings.Cut(rest, ">")
				if strings.HasSuffix(name, "/") {
					target = ""
				}
				entries = append(entries, zent{name: name, body: target, mode: fs.ModeSymlink | 0o777})
			}
		}
		data := buildZip(t, entries...)
		verr := Validate(bytes.NewReader(data), int64(len(data)), fuzzLimits)
		dir, check := sandbox(t)
		err := Extract(t.Context(), bytes.NewReader(data), int64(len(data)), dir, fuzzLimits)
		check()
		checkTreeSafe(t, dir)
		switch {
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Fatalf("Extract failed without blaming the archive: %v", err)
		case (err == nil) != (verr == nil):
			t.Fatalf("Validate and Extract disagree: Validate=%v Extract=%v", verr, err)
		}
	})
}
