# A warm AWS CLI (berthtest/cliworker.go). It reads one JSON call a line
# on file descriptor 4 ({"argv": [...], "env": {...}}), runs the CLI's
# entry point with that argv and environment, and writes {"stdout",
# "stderr", "code"} as one JSON line on descriptor 3. During a call its
# descriptors 1 and 2 are files, so what the CLI writes, its child
# processes included (help through groff), is captured as a fresh
# process's would be; standard input is /dev/null.
import json, logging, os, sys, tempfile, traceback

before = dict(os.environ)
import awscli.clidriver

# What importing the CLI put in the environment (awscli sets AWS_DATA_PATH):
# every call gets it, as every fresh process would.
by_import = {k: v for k, v in os.environ.items() if before.get(k) != v}
requests, replies = os.fdopen(4, 'r'), os.fdopen(3, 'w')


def logging_state():
    loggers = [logging.getLogger()] + [l for l in logging.root.manager.loggerDict.values() if isinstance(l, logging.Logger)]
    return {id(l): (l, list(l.handlers), l.level, l.propagate) for l in loggers}


def restore_logging(saved):
    # --debug adds a stream handler and lowers levels: a later call must
    # not inherit them.
    for key, (l, handlers, level, propagate) in logging_state().items():
        if key in saved:
            _, handlers, level, propagate = saved[key]
            l.handlers[:] = handlers
            l.setLevel(level)
            l.propagate = propagate
        else:
            l.handlers[:] = []
            l.setLevel(logging.NOTSET)
            l.propagate = True


def run(argv, env):
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(by_import)
    if os.environ.get('LC_CTYPE', '') == 'UTF-8':  # as the aws script
        os.environ['LC_CTYPE'] = 'en_US.UTF-8'
    sys.argv = ['aws'] + argv
    saved_logging = logging_state()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        fd1, fd2 = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            try:
                code = awscli.clidriver.main()  # the aws script: sys.exit(main())
            except SystemExit as e:
                code = e.code
            except BaseException:
                traceback.print_exc()
                code = 255
            # As sys.exit maps its argument to an exit status.
            if code is None:
                code = 0
            elif not isinstance(code, int):
                sys.stderr.write(str(code) + '\n')
                code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(fd1, 1); os.dup2(fd2, 2)
            os.close(fd1); os.close(fd2)
            restore_logging(saved_logging)
        out.seek(0); err.seek(0)
        return {'stdout': out.read().decode('utf-8', 'replace'),
                'stderr': err.read().decode('utf-8', 'replace'),
                'code': code}


replies.write('ready\n')
replies.flush()
for line in requests:
    req = json.loads(line)
    reply = run(req['argv'], req['env'])
    replies.write(json.dumps(reply) + '\n')
    replies.flush()
