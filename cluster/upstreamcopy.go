package cluster

import (
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/planner"
)

// Snapshots backed up upstream (SEEP): besides the coordinator, which
// keeps every instance's snapshot of the newest complete checkpoint,
// a worker instance sends each snapshot to the worker of one of its
// upstream instances (upstreamCopyHost). A repair restores a lost
// instance from that copy, worker to worker, when the holder is alive
// and its copy has the bytes the coordinator has; otherwise from the
// coordinator's. So a lost instance's state survives any single
// failure, and a correlated one (the instance and its holder dying
// together) too.

// upstreamCopyHost is the worker that keeps a copy of the snapshots of
// instance i of stage st: the host of one of its upstream instances
// (spread by i) that is neither its own nor the coordinator. "" when
// there is none: every upstream instance runs on the instance's own host
// or on the coordinator, which keeps every snapshot anyway.
func upstreamCopyHost(st *planner.Stage, pl placement, i int) string {
	own := pl.Hosts[st.ID][i]
	if own == coordinatorHost {
		return ""
	}
	for _, side := range st.Sides {
		w := pl.width(side.Stage)
		for j := range w {
			if h := pl.Hosts[side.Stage][(i+j)%w]; h != own && h != coordinatorHost {
				return h
			}
		}
	}
	return ""
}

// Copies travel like uploads to the coordinator (uploadSnapshot), on
// "copy/<run>/<epoch>/<stage>.<instance>".
const copyPrefix = "copy/"

func copyChannel(run string, epoch uint64, stage, idx int) string {
	return fmt.Sprintf("%s%s/%d/%d.%d", copyPrefix, run, epoch, stage, idx)
}

// parseSnapshotChannel reads an upload's or a copy's channel ID.
func parseSnapshotChannel(id, prefix string) (run string, epoch uint64, k [2]int, err error) {
	rest, ok := strings.CutPrefix(id, prefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		return "", 0, k, fmt.Errorf("malformed snapshot channel %q", id)
	}
	if _, err := fmt.Sscanf(parts[1]+" "+parts[2], "%d %d.%d", &epoch, &k[0], &k[1]); err != nil {
		return "", 0, k, fmt.Errorf("malformed snapshot channel %q", id)
	}
	return parts[0], epoch, k, nil
}

// snapshotSum is the checksum a copy is compared by before it is
// restored.
func snapshotSum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// upstreamCopies are the snapshots a worker keeps for instances
// downstream of its own: per instance, those of the epochs a complete
// checkpoint did not supersede yet, at most keepCopies of them.
type upstreamCopies struct {
	mu sync.Mutex
	// protected by mu
	byInstance map[copyKey][]snapshotCopy // oldest first
	bytes      int64
}

type copyKey struct {
	run string
	k   [2]int
}

type snapshotCopy struct {
	epoch uint64
	data  []byte
}

// keepCopies bounds the copies kept per instance: the newest complete
// checkpoint's and the one being taken.
const keepCopies = 2

// put keeps a copy. An instance's copies come one at a time, in epoch
// order (copyUpstream); one no newer than the newest kept is dropped.
func (u *upstreamCopies) put(run string, k [2]int, epoch uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byInstance == nil {
		u.byInstance = map[copyKey][]snapshotCopy{}
	}
	key := copyKey{run, k}
	list := u.byInstance[key]
	if n := len(list); n > 0 && list[n-1].epoch >= epoch {
		return
	}
	u.bytes += int64(len(data))
	list = append(list, snapshotCopy{epoch, data})
	u.byInstance[key] = u.dropFirst(list, max(len(list)-keepCopies, 0))
}

// dropFirst removes the first n copies of list, releasing their bytes.
func (u *upstreamCopies) dropFirst(list []snapshotCopy, n int) []snapshotCopy {
	for _, c := range list[:n] {
		u.bytes -= int64(len(c.data))
	}
	return slices.Delete(list, 0, n) // clears the dropped ones: their bytes are freed
}

// get returns the copy of instance k's snapshot of checkpoint epoch.
func (u *upstreamCopies) get(run string, k [2]int, epoch uint64) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.byInstance[copyKey{run, k}] {
		if c.epoch == epoch {
			return c.data, true
		}
	}
	return nil, false
}

// trim drops the copies of run that checkpoint epoch, complete,
// supersedes.
func (u *upstreamCopies) trim(run string, epoch uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for key, list := range u.byInstance {
		if key.run != run {
			continue
		}
		n := 0
		for n < len(list) && list[n].epoch < epoch {
			n++
		}
		list = u.dropFirst(list, n)
		if len(list) == 0 {
			delete(u.byInstance, key)
		} else {
			u.byInstance[key] = list
		}
	}
}

// drop forgets every copy of run (it stopped here).
func (u *upstreamCopies) drop(run string) { u.trim(run, ^uint64(0)) }

// held is the bytes of the copies kept.
func (u *upstreamCopies) held() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bytes
}

// copyRequest asks the worker holding a copy of an instance's snapshot
// to send it on the instance's restore channel to To (a data-plane
// address; the holder's own: it keeps it for the restore request). Bytes
// and Sum are the coordinator's snapshot's, which the copy must match.
type copyRequest struct {
	Run      string `json:"run"`
	Stage    int    `json:"stage"`
	Instance int    `json:"instance"`
	Epoch    uint64 `json:"epoch"`
	Bytes    int    `json:"bytes"`
	Sum      uint32 `json:"sum"`
	To       string `json:"to"`
}

// copyUpstream sends instance k's snapshot of checkpoint epoch to the
// worker that keeps its copy, if any. One copy per instance is under
// way at a time: while one is, later snapshots send none (a slow holder
// must not pile them up here); the coordinator's stands for them.
func (w *workerRuntime) copyUpstream(p *pipeline, epoch uint64, k [2]int, data []byte, log zerolog.Logger) {
	pl := p.placement()
	holder := upstreamCopyHost(p.query.Plan.Stages[k[0]], pl, k[1])
	if holder == "" {
		return
	}
	key := copyKey{pl.Run, k}
	w.mu.Lock()
	busy := w.copying[key]
	if !busy {
		if w.copying == nil {
			w.copying = map[copyKey]bool{}
		}
		w.copying[key] = true
	}
	w.mu.Unlock()
	if busy {
		log.Debug().Int("stage", k[0]).Int("instance", k[1]).Msg("a copy upstream is still under way; this checkpoint's is not sent")
		return
	}
	defer func() {
		w.mu.Lock()
		delete(w.copying, key)
		w.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Minute)
	defer cancel()
	if err := uploadSnapshot(ctx, w.net, pl.Addrs[holder], copyChannel(pl.Run, epoch, k[0], k[1]), data); err != nil && p.ctx.Err() == nil {
		log.Info().Err(err).Str("holder", holder).Msg("the snapshot's copy upstream was not sent; the coordinator's stands")
	}
}

// sendCopy answers a copyRequest on the worker that holds the copy.
func (w *workerRuntime) sendCopy(ctx context.Context, req copyRequest) error {
	k := [2]int{req.Stage, req.Instance}
	data, ok := w.copies.get(req.Run, k, req.Epoch)
	if !ok {
		return fmt.Errorf("no copy of stage %d instance %d at checkpoint %d here", k[0], k[1], req.Epoch)
	}
	if len(data) != req.Bytes || snapshotSum(data) != req.Sum {
		return fmt.Errorf("the copy of stage %d instance %d at checkpoint %d differs from the coordinator's", k[0], k[1], req.Epoch)
	}
	id := restoreChannel(req.Run, k)
	if req.To == w.net.Addr() {
		w.mu.Lock()
		w.uploaded[id] = data
		w.mu.Unlock()
		return nil
	}
	uctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return uploadSnapshot(uctx, w.net, req.To, id, data)
}

// restoreInstance has worker h restore instance k from checkpoint
// epoch's snapshot data: from the copy upstream when one is held (and
// matches), else from the coordinator's. It reports whether the copy
// upstream was used.
func (c *Coordinator) restoreInstance(qr *queryRuntime, h string, pl placement, k [2]int, epoch uint64, data []byte) (bool, error) {
	if holder, sum := qr.ckpt.upstreamCopy(epoch, k); holder != "" {
		req := copyRequest{Run: pl.Run, Stage: k[0], Instance: k[1], Epoch: epoch, Bytes: len(data), Sum: sum, To: pl.Addrs[h]}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := c.reg.Call(ctx, holder, reqCopy, req, nil)
		cancel()
		if err == nil {
			if err = c.applyUploaded(h, pl, k); err == nil {
				return true, nil
			}
		}
		c.cfg.Logger.Info().Err(err).Str("holder", holder).Int("stage", k[0]).Int("instance", k[1]).
			Msg("the snapshot's copy upstream did not restore; sending the coordinator's")
	}
	return false, c.sendRestore(h, pl, k, data)
}
