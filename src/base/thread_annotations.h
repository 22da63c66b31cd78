// Lock rules the compiler checks: clang's -Wthread-safety reads these
// attributes (FF_GUARDED_BY, FF_REQUIRES, ...) and fails the clang build when a
// guarded member is touched without its mutex. Other compilers ignore them.
// FF_-prefixed: gRPC brings Abseil, whose unprefixed macros of the same
// names would clash.
// Use them with ff::Mutex (base/mutex.h); std::mutex carries no capability.
#pragma once

#if defined(__clang__)
#define FF_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FF_THREAD_ANNOTATION(x)
#endif

#define FF_CAPABILITY(x) FF_THREAD_ANNOTATION(capability(x))
#define FF_SCOPED_CAPABILITY FF_THREAD_ANNOTATION(scoped_lockable)
#define FF_GUARDED_BY(x) FF_THREAD_ANNOTATION(guarded_by(x))
#define FF_PT_GUARDED_BY(x) FF_THREAD_ANNOTATION(pt_guarded_by(x))
#define FF_ACQUIRED_BEFORE(...) FF_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define FF_ACQUIRED_AFTER(...) FF_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define FF_REQUIRES(...) FF_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FF_EXCLUDES(...) FF_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FF_ACQUIRE(...) FF_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FF_RELEASE(...) FF_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FF_ASSERT_CAPABILITY(x) FF_THREAD_ANNOTATION(assert_capability(x))
#define FF_NO_THREAD_SAFETY_ANALYSIS FF_THREAD_ANNOTATION(no_thread_safety_analysis)
