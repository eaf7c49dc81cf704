package raftstore

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// CommandType is the first byte of every log entry. Values are append-only:
// never renumber or reuse one, replicas replay old logs.
type CommandType byte

// Command types.
const (
	cmdInvalid                CommandType = 0
	CmdPutFunction            CommandType = 1
	CmdDeleteFunction         CommandType = 2
	CmdSetAccountLimit        CommandType = 3
	CmdSetFunctionConcurrency CommandType = 4
	CmdGrantLeases            CommandType = 5
	CmdPublishVersion         CommandType = 6
	CmdPutAlias               CommandType = 7
	CmdDeleteVersion          CommandType = 8
	CmdEnqueueEvent           CommandType = 9
	CmdStartAttempt           CommandType = 10
	CmdFinishAttempt          CommandType = 11
	CmdPruneEvents            CommandType = 12
	CmdPutSchedule            CommandType = 13
	CmdDeleteSchedule         CommandType = 14
	CmdFireSchedule           CommandType = 15
	CmdEnqueueEvents          CommandType = 16
	CmdStartAttempts          CommandType = 17
	CmdFinishAttempts         CommandType = 18
	CmdPutToken               CommandType = 19
	CmdDeleteToken            CommandType = 20
	CmdRotateRoot             CommandType = 21
	CmdClaimCode              CommandType = 22
	CmdSetTenantCaps          CommandType = 23
)

// Command is one typed change to apply through Raft.
type Command struct {
	Type CommandType
	Msg  proto.Message
}

// encode frames a command as its type byte then the protobuf.
func (c Command) encode() ([]byte, error) {
	body, err := proto.Marshal(c.Msg)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", c.Type, err)
	}
	return append([]byte{byte(c.Type)}, body...), nil
}

// applier decodes and applies one command's body. A body that does not
// decode panics: a replica that cannot read the log must stop rather than
// drift. A domain refusal is returned as an error value.
type applier func(s *state, body []byte) any

// appliers is the table of command types; each domain file adds its own.
var appliers = map[CommandType]applier{}

func register(t CommandType, a applier) {
	if t == cmdInvalid {
		panic("raftstore: command type 0 is reserved")
	}
	if _, dup := appliers[t]; dup {
		panic(fmt.Sprintf("raftstore: command type %d registered twice", t))
	}
	appliers[t] = a
}

// mustUnmarshal decodes a command body or panics (see applier).
func mustUnmarshal(body []byte, m proto.Message) {
	if err := proto.Unmarshal(body, m); err != nil {
		panic(fmt.Sprintf("raftstore: undecodable %T in log: %v", m, err))
	}
}
