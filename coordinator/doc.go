// Package coordinator holds a coordinator's services — functions and
// their versions, invocations (synchronous, queued and scheduled), quotas,
// tokens, the cluster's view for operators — and New, which assembles
// them with the parts they use:
//
//   - api: the user-facing edge (gust.v1 over gRPC, the Lambda REST
//     front's glue, tenancy), each adapter over the services it serves;
//   - replica: writes committed through the Raft leader, reads that catch
//     up with it, code copied to a majority, and PeerService;
//   - fleet: the workers, reached only through worker/workerapi, and
//     placement and provisioning on them;
//   - admission: concurrency quotas; leader: the leader-only loops.
//
// Errors keep their sentinels up to the edge, where api names them for
// users once; worker refusals are named in invoke.go's workerError.
package coordinator
