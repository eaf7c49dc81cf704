package codezip

import (
	"fmt"
	"strings"
)

const (
	// maxHops matches Linux's MAXSYMLINKS: a chain longer than this fails
	// with ELOOP at run time anyway, so it is refused up front.
	maxHops = 40
	// maxLinkSteps bounds the path elements walked to resolve one symlink,
	// and maxTotalSteps those for a whole archive, so crafted link chains
	// cannot turn validation into a CPU sink. Real trees (node_modules/.bin,
	// shared-library version links) need a handful of steps per link.
	maxLinkSteps  = 4096
	maxTotalSteps = 1 << 20
)

// resolver checks symlink targets against the tree the archive describes.
//
// A purely lexical check is not enough: with "s -> ." the target "s/.."
// cleans to "." but the kernel resolves it to the parent of the root. So the
// target is walked element by element the way the kernel would walk it,
// expanding every archive symlink met on the way, and refused if ".." ever
// climbs above the root. Since the extracted tree contains exactly the
// archive's nodes, this is what happens at run time under /var/task.
type resolver struct {
	nodes map[string]node
	total int

	// scratch state, reused across links to avoid allocation
	buf   []byte // current resolved path, elements joined by '/'
	marks []int  // len(buf) before each element was pushed, for ".."
	stack []string
}

func newResolver(nodes map[string]node) *resolver {
	return &resolver{nodes: nodes}
}

// check verifies that the symlink at link (a clean archive path whose
// parents contain no symlinks) with the given target stays inside the tree.
// Returned errors are refusals without the entry prefix.
func (r *resolver) check(link, target string) error {
	switch {
	case target == "":
		return errPlain("symlink has an empty target")
	case strings.IndexByte(target, 0) >= 0:
		return errPlain("symlink target contains a NUL byte")
	case target[0] == '/':
		return errPlain(fmt.Sprintf("symlink target %q is absolute; only relative targets inside the archive are allowed", target))
	}
	escapes := func() error {
		return errPlain(fmt.Sprintf("symlink target %q escapes the archive root", target))
	}

	r.buf, r.marks, r.stack = r.buf[:0], r.marks[:0], r.stack[:0]
	// The link's own directory is the starting point; addParents ensured
	// it holds no symlinks, so it needs no expansion.
	if dir := parentOf(link); dir != "" {
		for _, el := range strings.Split(dir, "/") {
			r.push(el)
		}
	}
	r.stack = append(r.stack, target)
	hops, steps := 0, 0
	for len(r.stack) > 0 {
		top := r.stack[len(r.stack)-1]
		if top == "" {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		el, rest, _ := strings.Cut(top, "/")
		r.stack[len(r.stack)-1] = rest

		steps++
		r.total++
		if steps > maxLinkSteps || r.total > maxTotalSteps {
			return errPlain(fmt.Sprintf("symlink target %q is too complex to verify", target))
		}
		switch el {
		case "", ".":
			continue
		case "..":
			if len(r.marks) == 0 {
				return escapes()
			}
			r.pop()
			continue
		}
		r.push(el)
		n, ok := r.nodes[string(r.buf)] // no allocation: map index by []byte conversion
		if !ok || n.kind != kindSymlink {
			// Missing paths and regular files cannot be traversed at run
			// time; treating them lexically is conservative.
			continue
		}
		hops++
		if hops > maxHops {
			return errPlain(fmt.Sprintf("symlink target %q: too many levels of symbolic links", target))
		}
		if n.target == "" || n.target[0] == '/' {
			// That link is refused on its own too; refusing here keeps
			// the answer independent of entry order.
			return escapes()
		}
		// Replace the link element by its target, resolved from the
		// link's directory (which is where we are after popping it).
		r.pop()
		r.stack = append(r.stack, n.target)
	}
	return nil
}

func (r *resolver) push(el string) {
	r.marks = append(r.marks, len(r.buf))
	if len(r.buf) > 0 {
		r.buf = append(r.buf, '/')
	}
	r.buf = append(r.buf, el...)
}

func (r *resolver) pop() {
	last := len(r.marks) - 1
	r.buf = r.buf[:r.marks[last]]
	r.marks = r.marks[:last]
}
