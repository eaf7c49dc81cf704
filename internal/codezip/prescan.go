package codezip

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Zip record layout constants (APPNOTE.TXT), mirroring archive/zip's.
const (
	sigDirEnd      = 0x06054b50
	sigDir64Loc    = 0x07064b50
	sigDir64End    = 0x06064b50
	sigDirHeader   = 0x02014b50
	lenDirEnd      = 22
	lenDir64Loc    = 20
	lenDir64End    = 56
	lenDirHeader   = 46
	maxCommentScan = 65 * 1024
)

// countEntries counts central-directory headers where archive/zip will look
// for them, stopping as soon as the count passes limit. It exists because
// zip.NewReader allocates a File for every header (several hundred bytes per
// 46-byte header) before we can inspect len(File), so a hostile 50 MiB
// archive could cost hundreds of MiB of memory just to be refused.
//
// ok is false whenever the layout is not understood; the caller then relies
// on archive/zip, which remains the authority (its own count is checked
// again). The count can exceed archive/zip's only when more than limit
// well-formed-looking headers sit where archive/zip might read them, which no
// honest writer produces; it never undercounts what archive/zip will load.
func countEntries(r io.ReaderAt, size int64, limit int) (n int, ok bool) {
	offs, ok := centralDirOffsets(r, size)
	if !ok {
		return 0, false
	}
	for _, off := range offs {
		n = max(n, countHeaders(r, size, off, limit))
	}
	return n, true
}

// countHeaders counts consecutive central-directory headers from off,
// stopping at the first malformed one or once the count passes limit.
func countHeaders(r io.ReaderAt, size, off int64, limit int) int {
	br := bufio.NewReader(io.NewSectionReader(r, off, size-off))
	var hdr [lenDirHeader]byte
	n := 0
	for n <= limit {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return n
		}
		if binary.LittleEndian.Uint32(hdr[0:]) != sigDirHeader {
			return n
		}
		skip := int(binary.LittleEndian.Uint16(hdr[28:])) +
			int(binary.LittleEndian.Uint16(hdr[30:])) +
			int(binary.LittleEndian.Uint16(hdr[32:]))
		if d, err := br.Discard(skip); err != nil || d != skip {
			return n // truncated header: archive/zip stops here too
		}
		n++
	}
	return n
}

// centralDirOffsets finds where archive/zip will read the central directory,
// following its readDirectoryEnd. When archive/zip might pick either of two
// offsets (see below) both are returned, so the caller can count at both:
// guessing wrong must never let a huge directory slip past the pre-scan.
func centralDirOffsets(r io.ReaderAt, size int64) ([]int64, bool) {
	var buf []byte
	var endOff int64 = -1
	for _, bLen := range []int64{1024, maxCommentScan} {
		if bLen > size {
			bLen = size
		}
		buf = make([]byte, bLen)
		if _, err := r.ReadAt(buf, size-bLen); err != nil && err != io.EOF {
			return nil, false
		}
		if p := findDirEnd(buf); p >= 0 {
			buf = buf[p:]
			endOff = size - bLen + int64(p)
			break
		}
		if bLen == size {
			break
		}
	}
	if endOff < 0 {
		return nil, false
	}
	records := uint64(binary.LittleEndian.Uint16(buf[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(buf[12:]))
	dirOffset := uint64(binary.LittleEndian.Uint32(buf[16:]))
	if records == 0xffff || dirSize == 0xffff || dirOffset == 0xffffffff {
		var loc [lenDir64Loc]byte
		locOff := endOff - lenDir64Loc
		if locOff >= 0 {
			if _, err := r.ReadAt(loc[:], locOff); err != nil {
				return nil, false
			}
			if binary.LittleEndian.Uint32(loc[0:]) == sigDir64Loc &&
				binary.LittleEndian.Uint32(loc[4:]) == 0 &&
				binary.LittleEndian.Uint32(loc[16:]) == 1 {
				p := binary.LittleEndian.Uint64(loc[8:])
				if p > uint64(size) {
					return nil, false
				}
				var end [lenDir64End]byte
				if _, err := r.ReadAt(end[:], int64(p)); err != nil {
					return nil, false
				}
				if binary.LittleEndian.Uint32(end[0:]) != sigDir64End {
					return nil, false
				}
				endOff = int64(p)
				dirSize = binary.LittleEndian.Uint64(end[40:])
				dirOffset = binary.LittleEndian.Uint64(end[48:])
			}
		}
	}
	const maxInt64 = 1<<63 - 1
	if dirSize > maxInt64 || dirOffset > maxInt64 {
		return nil, false
	}
	base := endOff - int64(dirSize) - int64(dirOffset)
	if o := base + int64(dirOffset); o < 0 || o >= size {
		return nil, false
	}
	// archive/zip falls back to base 0 when a valid header parses at the
	// raw offset, to cope with writers that get the base wrong. Its notion
	// of "valid" is subtle (zip64 extras), so consider both candidates.
	if base > 0 {
		return []int64{base + int64(dirOffset), int64(dirOffset)}, true
	}
	return []int64{base + int64(dirOffset)}, true
}

// findDirEnd returns the position of the end-of-central-directory record in
// b, searching backwards like archive/zip, or -1.
func findDirEnd(b []byte) int {
	for i := len(b) - lenDirEnd; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == sigDirEnd {
			n := int(binary.LittleEndian.Uint16(b[i+lenDirEnd-2:]))
			if n+lenDirEnd+i > len(b) {
				return -1 // truncated comment: archive/zip gives up too
			}
			return i
		}
	}
	return -1
}
