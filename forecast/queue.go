package forecast

// item is an enrollment's pending execution on its sender's queue.
type item struct {
	at  int64 // scheduled_for, Unix nanoseconds
	enr int32
}

type itemHeap []item

// less is the claim's order within follow-ups or first touches: the
// oldest scheduled_for, ties in enrollment order (m.enr is in enrollment
// id order, UUIDv7s ascending with enrollment; an enrollment has one
// pending execution, so this order is total).
func (h itemHeap) less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].enr < h[j].enr)
}

func (h *itemHeap) push(it item) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *itemHeap) pop() item {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// rekey moves the queue's executions due before until to until (their
// deferral).
func (h *itemHeap) rekey(until int64) {
	var moved []item
	for len(*h) > 0 && (*h)[0].at < until {
		moved = append(moved, h.pop())
	}
	for _, it := range moved {
		it.at = until
		h.push(it)
	}
}

// update recomputes an adapter's wake time and its place in the heap.
func (m *sim) update(a *simAdapter) {
	w := a.earliest()
	if w != never {
		w = max(w, a.next, a.idle)
	}
	a.wake = w
	switch {
	case w == never && a.hidx >= 0:
		m.heapRemove(a.hidx)
	case w != never && a.hidx < 0:
		a.hidx = len(m.heap)
		m.heap = append(m.heap, a)
		m.heapUp(a.hidx)
	case w != never:
		m.heapUp(a.hidx)
		m.heapDown(a.hidx)
	}
}

func (m *sim) heapUp(i int) {
	h := m.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].wake <= h[i].wake {
			break
		}
		h[p], h[i] = h[i], h[p]
		h[p].hidx, h[i].hidx = p, i
		i = p
	}
}

func (m *sim) heapDown(i int) {
	h := m.heap
	n := len(h)
	for {
		l, r, s := 2*i+1, 2*i+2, i
		if l < n && h[l].wake < h[s].wake {
			s = l
		}
		if r < n && h[r].wake < h[s].wake {
			s = r
		}
		if s == i {
			return
		}
		h[s], h[i] = h[i], h[s]
		h[s].hidx, h[i].hidx = s, i
		i = s
	}
}

func (m *sim) heapRemove(i int) {
	h := m.heap
	n := len(h) - 1
	h[i].hidx = -1
	if i != n {
		h[i] = h[n]
		h[i].hidx = i
	}
	m.heap = h[:n]
	if i != n {
		m.heapUp(i)
		m.heapDown(i)
	}
}
