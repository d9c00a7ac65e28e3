package tenants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
)

var (
	alice   = &user.DefaultInfo{Name: "alice", Groups: []string{"projectcapsule.dev", "system:authenticated"}}
	bob     = &user.DefaultInfo{Name: "bob", Groups: []string{"projectcapsule.dev", "gas-devs"}}
	robot   = &user.DefaultInfo{Name: "system:serviceaccount:ci:robot", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci"}}
	dave    = &user.DefaultInfo{Name: "alice-lookalike", Groups: []string{"alice", "gas-devs"}} // group named like a user
	mallory = &user.DefaultInfo{Name: "mallory", Groups: []string{"projectcapsule.dev"}}
)

// testNamespace is a namespace owned, through ownerReferences, by the tenants with the given UIDs.
func testNamespace(name string, rv uint64, tenantUIDs ...types.UID) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: strconv.FormatUint(rv, 10)}}
	for _, uid := range tenantUIDs {
		ns.OwnerReferences = append(ns.OwnerReferences, metav1.OwnerReference{
			APIVersion: "capsule.clastix.io/v1beta2", Kind: "Tenant", Name: string(uid), UID: uid})
	}
	return ns
}

func testTenant(uid types.UID, rv uint64, owners []subject, statusNamespaces ...string) *tenant {
	t := &tenant{name: string(uid), uid: uid, rv: rv, owners: owners, namespaces: map[string]struct{}{}}
	for _, ns := range statusNamespaces {
		t.namespaces[ns] = struct{}{}
	}
	return t
}

// fixture is two tenants, "oil" (user alice, and service account robot only in status.owners) and "gas"
// (group gas-devs), and namespaces that do and do not belong to them.
func fixture(t *testing.T) *Index {
	t.Helper()
	ix := newIndex("", 0)
	ix.setTenant(testTenant("oil", 10, []subject{{userKind, "alice"}, {serviceAccountKind, robot.Name}}, "oil-status-only"), false)
	ix.setTenant(testTenant("gas", 11, []subject{{groupKind, "gas-devs"}}, "gas-listed-but-missing"), false)
	for _, ns := range []*corev1.Namespace{
		testNamespace("oil-dev", 1, "oil"),
		testNamespace("oil-status-only", 2),
		testNamespace("gas-dev", 3, "gas"),
		testNamespace("both", 4, "oil", "gas"),
		testNamespace("unknown-tenant", 5, "no-such-uid"),
		{ObjectMeta: metav1.ObjectMeta{Name: "labelled", ResourceVersion: "6", Labels: map[string]string{"capsule.clastix.io/tenant": "oil"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "forged", ResourceVersion: "7", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "example.com/v1", Kind: "Tenant", Name: "oil", UID: "oil"}}}},
		testNamespace("kube-system", 8),
	} {
		ix.setNamespace(ns, false)
	}
	users := newCapsuleUsers()
	users.add(subject{groupKind, "projectcapsule.dev"})
	ix.setUsers(users, 12, false)
	ix.markSynced()
	return ix
}

func names(items []*corev1.Namespace) []string {
	out := []string{}
	for _, ns := range items {
		out = append(out, ns.Name)
	}
	return out
}

func TestIndexAnswersFromAuthoritativeMembership(t *testing.T) {
	ix := fixture(t)
	tests := []struct {
		name       string
		user       user.Info
		tenants    []string
		namespaces []string
	}{
		{"user owner", alice, []string{"oil"}, []string{"both", "oil-dev", "oil-status-only"}},
		{"service account owner from status.owners", robot, []string{"oil"}, []string{"both", "oil-dev", "oil-status-only"}},
		{"group owner", bob, []string{"gas"}, []string{"both", "gas-dev"}},
		{"a group named like a user owns nothing of that user's", dave, []string{"gas"}, []string{"both", "gas-dev"}},
		{"no tenant", mallory, nil, []string{}},
	}
	all := []string{"oil-dev", "oil-status-only", "gas-dev", "both", "unknown-tenant", "labelled", "forged", "kube-system", "absent"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ix.Tenants(tt.user); !slices.Equal(got, tt.tenants) {
				t.Errorf("Tenants = %v, want %v", got, tt.tenants)
			}
			items, rv := ix.Namespaces(tt.user)
			if got := names(items); !slices.Equal(got, tt.namespaces) {
				t.Errorf("Namespaces = %v, want %v", got, tt.namespaces)
			}
			if rv != 12 {
				t.Errorf("resource version %d, want 12", rv)
			}
			for _, name := range all {
				_, ok := ix.Namespace(tt.user, name)
				if want := slices.Contains(tt.namespaces, name); ok != want {
					t.Errorf("Namespace(%s) visible = %v, want %v", name, ok, want)
				}
			}
		})
	}
}

func TestIndexFollowsChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(ix *Index)
		user   user.Info
		want   []string
	}{
		{"owner added", func(ix *Index) {
			ix.setTenant(testTenant("gas", 20, []subject{{groupKind, "gas-devs"}, {userKind, "mallory"}}), true)
		}, mallory, []string{"both", "gas-dev"}},
		{"owner removed", func(ix *Index) {
			ix.setTenant(testTenant("oil", 20, []subject{{serviceAccountKind, robot.Name}}, "oil-status-only"), true)
		}, alice, []string{}},
		{"tenant deleted", func(ix *Index) { ix.removeTenant("oil", 20, true) }, alice, []string{}},
		{"namespace listed in status", func(ix *Index) {
			ix.setTenant(testTenant("oil", 20, []subject{{userKind, "alice"}}, "oil-status-only", "kube-system"), true)
		}, alice, []string{"both", "kube-system", "oil-dev", "oil-status-only"}},
		{"namespace moved to another tenant", func(ix *Index) { ix.setNamespace(testNamespace("oil-dev", 20, "gas"), true) },
			bob, []string{"both", "gas-dev", "oil-dev"}},
		{"namespace moved away", func(ix *Index) { ix.setNamespace(testNamespace("oil-dev", 20, "gas"), true) },
			alice, []string{"both", "oil-status-only"}},
		{"namespace deleted", func(ix *Index) { ix.removeNamespace(testNamespace("oil-dev", 20, "oil")) },
			alice, []string{"both", "oil-status-only"}},
		{"namespace created", func(ix *Index) { ix.setNamespace(testNamespace("oil-new", 20, "oil"), true) },
			alice, []string{"both", "oil-dev", "oil-new", "oil-status-only"}},
		{"label set by the tenant grants nothing", func(ix *Index) {
			ns := testNamespace("gas-dev", 20, "gas")
			ns.Labels = map[string]string{"capsule.clastix.io/tenant": "oil"}
			ix.setNamespace(ns, true)
		}, alice, []string{"both", "oil-dev", "oil-status-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := fixture(t)
			tt.change(ix)
			items, rv := ix.Namespaces(tt.user)
			if got := names(items); !slices.Equal(got, tt.want) {
				t.Errorf("Namespaces = %v, want %v", got, tt.want)
			}
			if rv != 20 {
				t.Errorf("resource version %d, want 20", rv)
			}
		})
	}
}

func TestIndexCapsuleUsersFollowConfiguration(t *testing.T) {
	ix := fixture(t)
	if !ix.CapsuleUser(alice) || ix.CapsuleUser(robot) {
		t.Fatal("the users group makes alice, not robot, a Capsule user")
	}
	users := newCapsuleUsers()
	users.add(subject{serviceAccountKind, robot.Name})
	ix.setUsers(users, 20, true)
	if ix.CapsuleUser(alice) || !ix.CapsuleUser(robot) {
		t.Error("after the change robot, not alice, is a Capsule user")
	}
	ix.setUsers(nil, 21, true)
	if ix.CapsuleUser(robot) {
		t.Error("without a configuration nobody is a Capsule user")
	}
}

func TestFollowFromNowSendsEverything(t *testing.T) {
	ix := fixture(t)
	f, known, err := ix.Follow(alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	if len(known) != 0 {
		t.Errorf("known = %v, want nothing", known)
	}
	expectSignal(t, f)
	if _, all, rv := f.Take(); !all || rv != 12 {
		t.Errorf("Take all=%v rv=%d, want everything at 12", all, rv)
	}
}

func TestFollowFromAListReplaysChangesSinceIt(t *testing.T) {
	ix := fixture(t)
	listRV := ix.ResourceVersion()
	// Between the list and the watch: one namespace is created, one changed, one deleted, one moves in.
	ix.setNamespace(testNamespace("oil-new", 13, "oil"), true)
	changed := testNamespace("oil-dev", 14, "oil")
	changed.Labels = map[string]string{"stage": "dev"}
	ix.setNamespace(changed, true)
	ix.removeNamespace(testNamespace("oil-status-only", 15))
	ix.setNamespace(testNamespace("gas-dev", 16, "gas", "oil"), true)
	ix.setNamespace(testNamespace("unrelated", 17), true)

	f, known, err := ix.Follow(alice, &listRV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	// What the list showed at listRV, in the state it showed it.
	if got := slices.Sorted(keys(known)); !slices.Equal(got, []string{"both", "oil-dev", "oil-status-only"}) {
		t.Errorf("known = %v", got)
	}
	if known["oil-dev"].ResourceVersion != "1" {
		t.Errorf("oil-dev known at resource version %s, want the listed 1", known["oil-dev"].ResourceVersion)
	}
	expectSignal(t, f)
	pending, all, _ := f.Take()
	if all {
		t.Error("nothing but namespaces changed; no full recomputation needed")
	}
	if got := slices.Sorted(keys(pending)); !slices.Equal(got, []string{"gas-dev", "oil-dev", "oil-new", "oil-status-only", "unrelated"}) {
		t.Errorf("pending = %v", got)
	}
	if pending["oil-status-only"] == nil || pending["oil-status-only"].ResourceVersion != "15" {
		t.Errorf("the deleted namespace's final state is missing: %v", pending["oil-status-only"])
	}

	// Later changes arrive as notifications.
	ix.setNamespace(testNamespace("oil-later", 30, "oil"), true)
	expectSignal(t, f)
	if pending, _, rv := f.Take(); len(pending) != 1 || rv != 30 {
		t.Errorf("pending %v at %d, want oil-later at 30", slices.Sorted(keys(pending)), rv)
	}
	// A stopped follower hears nothing more.
	f.Stop()
	ix.setNamespace(testNamespace("oil-after-stop", 31, "oil"), true)
	select {
	case <-f.Changed():
		t.Error("stopped follower was notified")
	default:
	}
}

func TestFollowRefusesWhatHistoryCannotReplay(t *testing.T) {
	tests := []struct {
		name    string
		change  func(ix *Index)
		refused bool
	}{
		{"nothing changed", func(*Index) {}, false},
		{"namespace changes", func(ix *Index) { ix.setNamespace(testNamespace("oil-new", 13, "oil"), true) }, false},
		{"tenant owners changed", func(ix *Index) {
			ix.setTenant(testTenant("gas", 13, []subject{{groupKind, "gas-devs"}, {userKind, "alice"}}, "gas-listed-but-missing"), true)
		}, true},
		{"tenant deleted", func(ix *Index) { ix.removeTenant("gas", 13, true) }, true},
		{"status lists a namespace without an ownerReference", func(ix *Index) {
			ix.setTenant(testTenant("gas", 13, []subject{{groupKind, "gas-devs"}}, "gas-listed-but-missing", "kube-system"), true)
		}, true},
		{"status catches up with an ownerReference", func(ix *Index) {
			ix.setTenant(testTenant("gas", 13, []subject{{groupKind, "gas-devs"}}, "gas-listed-but-missing", "gas-dev"), true)
		}, false},
		{"status lists a namespace that does not exist", func(ix *Index) {
			ix.setTenant(testTenant("gas", 13, []subject{{groupKind, "gas-devs"}}, "gas-listed-but-missing", "nowhere"), true)
		}, false},
		{"Capsule users changed", func(ix *Index) { ix.setUsers(newCapsuleUsers(), 13, true) }, true},
		{"history evicted", func(ix *Index) {
			for i := range defaultHistorySize + 1 {
				ix.setNamespace(testNamespace("churn", uint64(13+i)), true)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := fixture(t)
			listRV := ix.ResourceVersion()
			tt.change(ix)
			f, _, err := ix.Follow(alice, &listRV)
			if refused := errors.Is(err, ErrResourceVersionTooOld); refused != tt.refused {
				t.Errorf("Follow error %v, refused %v, want %v", err, refused, tt.refused)
			}
			if f != nil {
				f.Stop()
			}
			// A fresh list's resource version always works.
			now := ix.ResourceVersion()
			if f, _, err := ix.Follow(alice, &now); err != nil {
				t.Errorf("Follow from the current resource version: %v", err)
			} else {
				f.Stop()
			}
		})
	}
	ix := fixture(t)
	before := uint64(3) // older than the initial list
	if _, _, err := ix.Follow(alice, &before); !errors.Is(err, ErrResourceVersionTooOld) {
		t.Errorf("Follow from before the caches synced: %v, want too old", err)
	}
}

func TestFollowersHearMembershipChanges(t *testing.T) {
	ix := fixture(t)
	f, _, err := ix.Follow(alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	expectSignal(t, f)
	f.Take()
	ix.setTenant(testTenant("gas", 20, []subject{{groupKind, "gas-devs"}, {userKind, "alice"}}), true)
	expectSignal(t, f)
	if _, all, _ := f.Take(); !all {
		t.Error("an owner change must make followers recompute everything")
	}
	ix.setTenant(testTenant("gas", 21, []subject{{groupKind, "gas-devs"}, {userKind, "alice"}}, "gas-dev"), true)
	expectSignal(t, f)
	if pending, all, _ := f.Take(); all || !slices.Equal(slices.Sorted(keys(pending)), []string{"gas-dev"}) {
		t.Errorf("a status change names its namespaces: pending %v all %v", slices.Sorted(keys(pending)), all)
	}
}

func TestWaitForResourceVersion(t *testing.T) {
	ix := fixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ix.WaitForResourceVersion(ctx, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a resource version never reached: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- ix.WaitForResourceVersion(context.Background(), 100) }()
	ix.setNamespace(testNamespace("oil-new", 100, "oil"), true)
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitForResourceVersion did not return after the index reached it")
	}
}

func expectSignal(t *testing.T, f *Follower) {
	t.Helper()
	select {
	case <-f.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("follower was not notified")
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// BenchmarkNamespaces: an owner's view at the scale of the benchmark, 10,000 namespaces in 1,000
// tenants, ten each.
func BenchmarkNamespaces(b *testing.B) {
	ix := newIndex("", 0)
	for i := range 1000 {
		uid := types.UID("t" + strconv.Itoa(i))
		ix.setTenant(testTenant(uid, 1, []subject{{userKind, "owner-" + strconv.Itoa(i)}, {groupKind, "group-" + strconv.Itoa(i%10)}}), false)
		for j := range 10 {
			ix.setNamespace(testNamespace(fmt.Sprintf("ns-%d-%d", i, j), uint64(2+i*10+j), uid), false)
		}
	}
	ix.markSynced()
	owner := &user.DefaultInfo{Name: "owner-42", Groups: []string{"projectcapsule.dev", "system:authenticated"}}
	b.Run("namespaces of one owner", func(b *testing.B) {
		for b.Loop() {
			if items, _ := ix.Namespaces(owner); len(items) != 10 {
				b.Fatal(len(items))
			}
		}
	})
	b.Run("one namespace", func(b *testing.B) {
		for b.Loop() {
			if _, ok := ix.Namespace(owner, "ns-42-7"); !ok {
				b.Fatal("not visible")
			}
		}
	})
	groupMember := &user.DefaultInfo{Name: "someone", Groups: []string{"group-3"}}
	b.Run("namespaces of a group owning 100 tenants", func(b *testing.B) {
		for b.Loop() {
			if items, _ := ix.Namespaces(groupMember); len(items) != 1000 {
				b.Fatal(len(items))
			}
		}
	})
}
