# A warm AWS CLI (berthtest/cliworker.go): reads one JSON call a line on
# stdin ({"argv": [...], "env": {...}}), runs the CLI's entry point with
# that argv and environment and its standard streams captured, and writes
# {"stdout", "stderr", "code"} as one JSON line on file descriptor 3
# (whatever the CLI writes past sys.stdout cannot garble the replies).
import io, json, os, sys, traceback
before = dict(os.environ)
import awscli.clidriver
# What importing the CLI put in the environment (awscli sets AWS_DATA_PATH):
# every call gets it, as every fresh process would.
by_import = {k: v for k, v in os.environ.items() if before.get(k) != v}

proto_in, proto_out = sys.stdin, os.fdopen(3, 'w')
real_stdout, real_stderr = sys.stdout, sys.stderr


def run(argv, env):
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(by_import)
    if os.environ.get('LC_CTYPE', '') == 'UTF-8':  # as the aws script
        os.environ['LC_CTYPE'] = 'en_US.UTF-8'
    out = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', write_through=True)
    sys.argv = ['aws'] + argv
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(''), out, err
    try:
        code = awscli.clidriver.main()
    except SystemExit as e:
        code = e.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            err.write(str(code) + '\n')
            code = 1
    except BaseException:
        traceback.print_exc(file=err)
        code = 255
    finally:
        sys.stdin, sys.stdout, sys.stderr = proto_in, real_stdout, real_stderr
    return {'stdout': out.buffer.getvalue().decode('utf-8', 'replace'),
            'stderr': err.buffer.getvalue().decode('utf-8', 'replace'),
            'code': code if isinstance(code, int) else 255}


proto_out.write('ready\n')
proto_out.flush()
for line in proto_in:
    req = json.loads(line)
    reply = run(req['argv'], req['env'])
    proto_out.write(json.dumps(reply) + '\n')
    proto_out.flush()
