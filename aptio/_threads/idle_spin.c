/* aptio._threads._idle_spin: the native half of an STA's idle spin (see
 * aptio/_threads/idle_spin.py for what it is for and when it is used).
 *
 * IdleSpin(budget_ns) holds one flag. wait() clears it, releases the interpreter lock and
 * polls the flag until poke() sets it or budget_ns nanoseconds have passed. Poked, it then
 * polls (for at most budget_ns more) until the interpreter lock is free before it takes the
 * lock back, and returns True. poke() is one atomic store, from any thread.
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
 * - wait() clears the flag while it still holds the interpreter lock, so a poke() seen by
 *   this wait() was made after it began (a poke from an earlier round that was late is
 *   cleared or ends this round early, which the caller tolerates: it re-checks its queue).
 * - The flag is read with acquire and written with release order: what the poking thread
 *   wrote before poke() is visible once wait() has seen the flag (and again once wait() has
 *   taken the interpreter lock back, which orders everything anyway).
 * - While the interpreter lock is released, wait() runs no Python code and touches no Python
 *   object; it only reads the lock's state, a field the interpreter keeps for its lifetime.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>

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

#ifdef APTIO_PEEK_GIL
/* Whether some thread holds the interpreter lock of `interp` (a relaxed read: a hint only; a
 * wrong answer costs time, never correctness, as the lock is then taken the usual way). */
static int
gil_held(PyInterpreterState *interp)
{
#if PY_VERSION_HEX < 0x030C0000
    (void)interp;
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked);
#elif PY_VERSION_HEX < 0x030D0000
    return _Py_atomic_load_relaxed(&interp->ceval.gil->locked);
#else
    return _Py_atomic_load_int_relaxed(&interp->ceval.gil->locked);
#endif
}
#endif

/* Reads of the flag between two reads of the clock (a read of the clock costs far more). */
#define READS_PER_CLOCK 32

typedef struct {
    PyObject_HEAD
    atomic_int poked;
    long long budget_ns;
} IdleSpin;

static int
IdleSpin_init(IdleSpin *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"budget_ns", NULL};
    long long budget_ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L", keywords, &budget_ns))
        return -1;
    if (budget_ns <= 0) {
        PyErr_Format(PyExc_ValueError, "an idle spin's budget is a number of nanoseconds > 0, "
                     "not %lld", budget_ns);
        return -1;
    }
    self->budget_ns = budget_ns;
    atomic_init(&self->poked, 0);
    return 0;
}

static int
spin(IdleSpin *self)
{
    long long deadline = monotonic_ns() + self->budget_ns;
    for (;;) {
        for (int i = 0; i < READS_PER_CLOCK; i++) {
            if (atomic_load_explicit(&self->poked, memory_order_acquire))
                return 1;
            relax();
        }
        if (monotonic_ns() >= deadline)
            return 0;
    }
}

/* Poked: poll until the interpreter lock is free, for at most the budget. */
static void
wait_for_free_gil(IdleSpin *self, PyInterpreterState *interp)
{
#ifdef APTIO_PEEK_GIL
    long long deadline = monotonic_ns() + self->budget_ns;
    for (;;) {
        for (int i = 0; i < READS_PER_CLOCK; i++) {
            if (!gil_held(interp))
                return;
            relax();
        }
        if (monotonic_ns() >= deadline)
            return;
    }
#else
    (void)self;
    (void)interp;
#endif
}

static PyObject *
IdleSpin_wait(IdleSpin *self, PyObject *Py_UNUSED(ignored))
{
    int poked;
    PyInterpreterState *interp = PyInterpreterState_Get();
    atomic_store_explicit(&self->poked, 0, memory_order_relaxed);
    Py_BEGIN_ALLOW_THREADS
    poked = spin(self);
    if (poked)
        wait_for_free_gil(self, interp);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(poked);
}

static PyObject *
IdleSpin_poke(IdleSpin *self, PyObject *Py_UNUSED(ignored))
{
    atomic_store_explicit(&self->poked, 1, memory_order_release);
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
     "poke() -> None\n--\n\nEnd the current wait() early (any thread)."},
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

static struct PyModuleDef idle_spin_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aptio._threads._idle_spin",
    .m_doc = "The native half of an STA's idle spin (see aptio/_threads/idle_spin.py).",
    .m_size = -1,
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
