/* aptio._threads._idle_spin: the native half of an STA's idle spin (see
 * aptio/_threads/idle_spin.py for what it is for and when it is used).
 *
 * IdleSpin(budget_ns) holds one flag. wait() releases the interpreter lock and polls the flag
 * until poke() sets it or budget_ns nanoseconds have passed. Poked, it then polls, until the
 * same deadline, for the interpreter lock to be free before it takes the lock back. It
 * clears the flag once it holds the lock again and returns whether it was poked. poke() is
 * one atomic store, from any thread.
 *
 * Why wait for the lock to be free: the thread that pokes holds the interpreter lock and
 * keeps it for some microseconds more (it returns to its own loop). Taking the lock back at
 * once would put this thread to sleep on the lock's condition variable, and waking it from
 * there costs the very cross-CPU wake-up the spin is meant to save (measured: 23-27 us per
 * call on a 2-vCPU virtual machine, against 0.1 us when it waits for the lock to be free).
 * CPython has no public way to ask whether the lock is held, so this reads the lock's state
 * from the interpreter's internal headers, for the versions whose layout is known here
 * (3.11-3.13, with the GIL); elsewhere it takes the lock back at once.
 *
 * Invariants:
 * - wait() lasts at most budget_ns (plus the time to take the interpreter lock back).
 * - The flag is cleared only by wait(), after it has taken the interpreter lock back. So a
 *   poke() made after the caller began the spin (see inbox.py: it sets `_spinning` first)
 *   is never erased; a poke() that comes late, after a wait() returned, ends the next wait()
 *   at once, which the caller tolerates (it re-reads its queue after every wait()).
 * - The flag is read with acquire and written with release order: what the poking thread
 *   wrote before poke() is visible once wait() has seen the flag (and again once wait() has
 *   taken the interpreter lock back, which orders everything anyway).
 * - While the interpreter lock is released, wait() runs no Python code and touches no Python
 *   object; it reads only the flag and the lock's state, through a pointer it took while it
 *   held the lock (for the main interpreter it points into the runtime's static state, which
 *   outlives every thread, also a daemon thread still polling at finalization).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define APTIO_PEEK_GIL 1
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
/* The internal pycore_gc.h of 3.11 and 3.12 defines this name, which the public headers
 * define too (as a macro) for code outside the core; this file uses neither. */
#undef _PyGC_FINALIZED
#if PY_VERSION_HEX < 0x030C0000
#include "internal/pycore_runtime.h"
#else
#include "internal/pycore_interp.h"
#endif
#endif

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

/* The flag's atomic operations: C11 atomics, or the Interlocked functions where the compiler
 * is MSVC (whose <stdatomic.h> needs an experimental switch). */
#if defined(_MSC_VER) && !defined(__clang__)
typedef volatile long flag_t;
#define FLAG_INIT(flag) (*(flag) = 0)
#define FLAG_RAISE(flag) InterlockedExchange((flag), 1)
#define FLAG_RAISED(flag) (InterlockedCompareExchange((flag), 0, 0) != 0)
#define FLAG_CLEAR(flag) InterlockedExchange((flag), 0)
#else
#include <stdatomic.h>
typedef atomic_int flag_t;
#define FLAG_INIT(flag) atomic_init((flag), 0)
#define FLAG_RAISE(flag) atomic_store_explicit((flag), 1, memory_order_release)
#define FLAG_RAISED(flag) (atomic_load_explicit((flag), memory_order_acquire) != 0)
#define FLAG_CLEAR(flag) atomic_store_explicit((flag), 0, memory_order_relaxed)
#endif

/* What the processor is told between two reads of the flag: "this is a spin-wait loop"
 * (saves power, and lets a sibling hardware thread run). */
static inline void
relax(void)
{
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#if defined(_MSC_VER)
    YieldProcessor();
#else
    __builtin_ia32_pause();
#endif
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

static long long
monotonic_ns(void)
{
#ifdef _WIN32
    LARGE_INTEGER frequency, counter;
    QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&counter);
    return (long long)((double)counter.QuadPart * 1e9 / (double)frequency.QuadPart);
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
#endif
}

/* The interpreter lock whose state wait() reads (NULL: none can be read here). */
#ifdef APTIO_PEEK_GIL
typedef struct _gil_runtime_state gil_state;

/* The calling interpreter's lock (call with the interpreter lock held). */
static gil_state *
current_gil(void)
{
#if PY_VERSION_HEX < 0x030C0000
    return &_PyRuntime.ceval.gil;
#else
    return PyInterpreterState_Get()->ceval.gil;
#endif
}

/* Whether some thread holds `gil` (a relaxed read: a hint only; a wrong answer costs time,
 * never correctness, as the lock is then taken the usual way). */
static int
gil_held(gil_state *gil)
{
#if PY_VERSION_HEX < 0x030D0000
    return _Py_atomic_load_relaxed(&gil->locked) != 0;
#else
    return _Py_atomic_load_int_relaxed(&gil->locked) != 0;
#endif
}
#else
typedef void gil_state;

static gil_state *
current_gil(void)
{
    return NULL;
}

static int
gil_held(gil_state *gil)
{
    (void)gil;
    return 0;
}
#endif

/* Reads of the flag between two reads of the clock (a read of the clock costs far more). */
#define READS_PER_CLOCK 32

/* The longest budget accepted, in nanoseconds (about eleven days): a deadline computed from it
 * cannot overflow. aptio itself asks for at most a millisecond. */
#define LONGEST_BUDGET_NS 1000000000000000LL

typedef struct {
    PyObject_HEAD
    flag_t poked;
    long long budget_ns;
} IdleSpin;

static int
IdleSpin_init(IdleSpin *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"budget_ns", NULL};
    long long budget_ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L", keywords, &budget_ns))
        return -1;
    if (budget_ns <= 0 || budget_ns > LONGEST_BUDGET_NS) {
        PyErr_Format(PyExc_ValueError, "an idle spin's budget is a number of nanoseconds > 0 "
                     "and at most %lld, not %lld", LONGEST_BUDGET_NS, budget_ns);
        return -1;
    }
    self->budget_ns = budget_ns;
    FLAG_INIT(&self->poked);
    return 0;
}

/* Without the interpreter lock: 1 if poked before `deadline`, else 0. */
static int
poll_flag(IdleSpin *self, long long deadline)
{
    for (;;) {
        for (int i = 0; i < READS_PER_CLOCK; i++) {
            if (FLAG_RAISED(&self->poked))
                return 1;
            relax();
        }
        if (monotonic_ns() >= deadline)
            return 0;
    }
}

/* Without the interpreter lock: poll until `gil` is free or `deadline` has passed. */
static void
poll_gil(gil_state *gil, long long deadline)
{
    if (gil == NULL)
        return;
    for (;;) {
        for (int i = 0; i < READS_PER_CLOCK; i++) {
            if (!gil_held(gil))
                return;
            relax();
        }
        if (monotonic_ns() >= deadline)
            return;
    }
}

static PyObject *
IdleSpin_wait(IdleSpin *self, PyObject *Py_UNUSED(ignored))
{
    int poked;
    gil_state *gil = current_gil();
    long long deadline = monotonic_ns() + self->budget_ns;
    Py_BEGIN_ALLOW_THREADS
    poked = poll_flag(self, deadline);
    if (poked)
        poll_gil(gil, deadline);
    Py_END_ALLOW_THREADS
    FLAG_CLEAR(&self->poked);
    return PyBool_FromLong(poked);
}

static PyObject *
IdleSpin_poke(IdleSpin *self, PyObject *Py_UNUSED(ignored))
{
    FLAG_RAISE(&self->poked);
    Py_RETURN_NONE;
}

static PyObject *
IdleSpin_get_budget_ns(IdleSpin *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->budget_ns);
}

static PyMethodDef IdleSpin_methods[] = {
    {"wait", (PyCFunction)IdleSpin_wait, METH_NOARGS,
     "wait() -> bool\n--\n\nPoll without the interpreter lock until poked (True) or until the "
     "budget has passed (False)."},
    {"poke", (PyCFunction)IdleSpin_poke, METH_NOARGS,
     "poke() -> None\n--\n\nEnd the current wait() early, or the next one (any thread)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef IdleSpin_getset[] = {
    {"budget_ns", (getter)IdleSpin_get_budget_ns, NULL, "The longest wait(), in nanoseconds.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject IdleSpinType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "aptio._threads._idle_spin.IdleSpin",
    .tp_doc = "IdleSpin(budget_ns)\n--\n\nA flag one thread polls without the interpreter "
              "lock for at most budget_ns nanoseconds, and any thread sets.",
    .tp_basicsize = sizeof(IdleSpin),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)IdleSpin_init,
    .tp_methods = IdleSpin_methods,
    .tp_getset = IdleSpin_getset,
};

/* For the tests: whether this build reads the interpreter lock's state, and what it reads
 * with the lock held and then released by this thread (None, None where it cannot read it).
 * The second reading may be 1 if another thread took the lock meanwhile. */
static PyObject *
gil_readings(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    gil_state *gil = current_gil();
    int held, released;
    if (gil == NULL)
        return Py_BuildValue("(OO)", Py_None, Py_None);
    held = gil_held(gil);
    Py_BEGIN_ALLOW_THREADS
    released = gil_held(gil);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(OO)", held ? Py_True : Py_False, released ? Py_True : Py_False);
}

static PyMethodDef module_methods[] = {
    {"_gil_readings", gil_readings, METH_NOARGS,
     "_gil_readings() -> tuple[bool | None, bool | None]\n--\n\nFor the tests: the lock's "
     "state read with it held, then released (None where this build cannot read it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef idle_spin_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aptio._threads._idle_spin",
    .m_doc = "The native half of an STA's idle spin (see aptio/_threads/idle_spin.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__idle_spin(void)
{
    if (PyType_Ready(&IdleSpinType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&idle_spin_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&IdleSpinType);
    if (PyModule_AddObject(module, "IdleSpin", (PyObject *)&IdleSpinType) < 0) {
        Py_DECREF(&IdleSpinType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
