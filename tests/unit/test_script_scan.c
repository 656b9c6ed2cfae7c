/* test_script_scan.c - the script scanner prepared for the policy plugin. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include "sx_check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "script_scan.h"

/* "line:w w w" per command, joined with " | "; wrappers marked with '^' */
static char out_[1 << 16];

static const char *dump_n(const char *script, size_t len, sx_scan_lang lang)
{
    sx_scan_result r;
    int rc = sx_scan(script, len, lang, &r);
    ck_assert_int_eq(rc, 0);
    size_t o = 0;
    out_[0] = '\0';
    for (size_t i = 0; i < r.ncmds && o < sizeof out_ - 256; i++) {
        o += (size_t)snprintf(out_ + o, sizeof out_ - o, "%s%zu%s:", i ? " | " : "",
                              r.cmds[i].line, r.cmds[i].wrapper ? "^" : "");
        for (size_t j = 0; j < r.cmds[i].nwords && o < sizeof out_ - 256; j++)
            o += (size_t)snprintf(out_ + o, sizeof out_ - o, "%s%s", j ? " " : "",
                                  r.cmds[i].words[j]);
    }
    sx_scan_result_free(&r);
    return out_;
}

static const char *sh(const char *s) { return dump_n(s, strlen(s), SX_SCAN_SH); }
static const char *py(const char *s) { return dump_n(s, strlen(s), SX_SCAN_PYTHON); }
static const char *rb(const char *s) { return dump_n(s, strlen(s), SX_SCAN_RUBY); }

/* is there a command whose first word is name? */
static int found(const char *script, sx_scan_lang lang, const char *name)
{
    sx_scan_result r;
    ck_assert_int_eq(sx_scan(script, strlen(script), lang, &r), 0);
    int f = 0;
    for (size_t i = 0; i < r.ncmds; i++)
        f |= strcmp(r.cmds[i].words[0], name) == 0;
    sx_scan_result_free(&r);
    return f;
}

static int match(const char *pattern, const char *line)
{
    char buf[256];
    const char *w[16];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 16;
         t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    int m = -1;
    ck_assert_int_eq(sx_cmd_match(pattern, w, n, &m), 0);
    return m;
}

/* ---- shell: separators and grouping ---- */

START_TEST(sh_simple_and_operators)
{
    ck_assert_str_eq(sh("ls -l"), "1:ls -l");
    ck_assert_str_eq(sh("a | b || c && d ; e & f |& g"),
                     "1:a | 1:b | 1:c | 1:d | 1:e | 1:f | 1:g");
    ck_assert_str_eq(sh("a\nb\n\nc"), "1:a | 2:b | 4:c");
}
END_TEST

START_TEST(sh_groups_and_subshells)
{
    ck_assert_str_eq(sh("(a; b) && { c; d; }"), "1:a | 1:b | 1:c | 1:d");
    ck_assert_str_eq(sh("if rm -rf /x; then echo y; else z; fi"),
                     "1:rm -rf /x | 1:echo y | 1:z");
    ck_assert_str_eq(sh("while true; do sleep 1; done"), "1:true | 1:sleep 1");
    ck_assert_str_eq(sh("f() { rm x; }\nf"), "1:rm x | 2:f");
    ck_assert_str_eq(sh("! grep -q x y"), "1:grep -q x y");
}
END_TEST

START_TEST(sh_command_substitution_nested)
{
    ck_assert_str_eq(sh("echo $(rm -rf / $(shred x))"),
                     "1:shred x | 1:rm -rf / $(...) | 1:echo $(...)");
    ck_assert_str_eq(sh("echo \"$(id -u)\""), "1:id -u | 1:echo $(...)");
    ck_assert_str_eq(sh("echo `whoami`"), "1:whoami | 1:echo $(...)");
    ck_assert_str_eq(sh("echo `a \\`b\\``"), "1:b | 1:a $(...) | 1:echo $(...)");
    ck_assert_str_eq(sh("x=$((1 + $(wc -l < f)))"), "1:wc -l");
    ck_assert_str_eq(sh("echo ${x:-$(reboot)}"), "1:reboot | 1:echo ${...}");
    ck_assert_str_eq(sh("diff <(ls a) >(cat)"), "1:ls a | 1:cat | 1:diff");
}
END_TEST

/* ---- quoting ---- */

START_TEST(sh_quoted_text_is_not_a_command)
{
    ck_assert_str_eq(sh("echo \"rm -rf /\""), "1:echo rm -rf /");
    ck_assert_str_eq(sh("echo 'a; rm -rf /'"), "1:echo a; rm -rf /");
    ck_assert_str_eq(sh("echo a\\;rm"), "1:echo a;rm");
    ck_assert(!found("printf '%s' \"$(echo rm)\"", SX_SCAN_SH, "rm"));
}
END_TEST

START_TEST(sh_quotes_removed_from_words)
{
    ck_assert_str_eq(sh("'r''m' -rf /"), "1:rm -rf /");
    ck_assert_str_eq(sh("\"r\"m -rf /"), "1:rm -rf /");
    ck_assert_str_eq(sh("r\\m -rf /"), "1:rm -rf /");
    ck_assert_str_eq(sh("$'\\x72m' -rf /"), "1:rm -rf /");
    ck_assert_str_eq(sh("$'\\162\\155' x"), "1:rm x");
    ck_assert_str_eq(sh("echo \"a \\\"b\\\" \\$c\""), "1:echo a \"b\" $c");
}
END_TEST

START_TEST(sh_comments_skipped)
{
    ck_assert_str_eq(sh("# rm -rf /\nls # ; rm -rf /\necho a#b"), "2:ls | 3:echo a#b");
    ck_assert_str_eq(sh("echo '#' ; rm x"), "1:echo # | 1:rm x");
}
END_TEST

START_TEST(sh_heredoc_bodies_skipped)
{
    ck_assert_str_eq(sh("cat <<EOF\nrm -rf /\nEOF\nls"), "1:cat | 4:ls");
    ck_assert_str_eq(sh("cat <<-'EOF' >out\n\trm -rf /\n\tEOF\nls"), "1:cat | 4:ls");
    ck_assert_str_eq(sh("cat <<\"E\" && echo x\nrm\nE\nls"), "1:cat | 1:echo x | 4:ls");
    ck_assert_str_eq(sh("cat <<A <<B\nrm\nA\nshred\nB\nls"), "1:cat | 6:ls");
    /* an unquoted heredoc's substitutions run: they are found */
    ck_assert_str_eq(sh("cat <<EOF\nhello $(reboot)\nEOF"), "1:cat | 2:reboot");
    ck_assert_str_eq(sh("cat <<'EOF'\nhello $(reboot)\nEOF"), "1:cat");
    ck_assert_str_eq(sh("cat <<<'rm -rf /'"), "1:cat");
}
END_TEST

START_TEST(sh_redirections_not_words)
{
    ck_assert_str_eq(sh("ls >out 2>&1 <in"), "1:ls");
    ck_assert_str_eq(sh("ls &>/dev/null; cat 3<f >>g"), "1:ls | 1:cat");
    ck_assert_str_eq(sh("echo > $(rm x)"), "1:rm x | 1:echo");
}
END_TEST

START_TEST(sh_line_numbers)
{
    ck_assert_str_eq(sh("a\nb \\\n c\nd 'x\ny'\ne"), "1:a | 2:b c | 4:d x\ny | 6:e");
    ck_assert_str_eq(sh("echo $(\n\nrm)"), "3:rm | 1:echo $(...)");
    ck_assert_str_eq(sh("\n\nbash -c 'x\ny'"), "3:bash -c x\ny | 3:x | 4:y");
}
END_TEST

START_TEST(sh_paths_reduced_to_basename)
{
    ck_assert_str_eq(sh("/bin/rm -rf /tmp/x"), "1:rm -rf /tmp/x");
    ck_assert_str_eq(sh("./x/../usr/sbin/mkfs.ext4 /dev/sda"), "1:mkfs.ext4 /dev/sda");
    ck_assert_str_eq(sh("/"), "1:/");
}
END_TEST

START_TEST(sh_assignments_skipped)
{
    ck_assert_str_eq(sh("A=1 B='x y' rm f"), "1:rm f");
    ck_assert_str_eq(sh("A=1"), "");
    ck_assert_str_eq(sh("PATH+=:/x ls"), "1:ls");
}
END_TEST

START_TEST(sh_wrappers)
{
    ck_assert_str_eq(sh("sudo -u root -E rm -rf /"), "1^:sudo -u root -E | 1:rm -rf /");
    ck_assert_str_eq(sh("env -i -u X A=b /bin/rm x"), "1^:env -i -u X | 1:rm x");
    ck_assert_str_eq(sh("exec -a n rm"), "1^:exec -a n | 1:rm");
    ck_assert_str_eq(sh("command rm"), "1^:command | 1:rm");
    ck_assert_str_eq(sh("nohup rm &"), "1^:nohup | 1:rm");
    ck_assert_str_eq(sh("timeout -s KILL 10s rm"), "1^:timeout -s KILL 10s | 1:rm");
    ck_assert_str_eq(sh("nice -n 5 rm"), "1^:nice -n 5 | 1:rm");
    ck_assert_str_eq(sh("find . | xargs -0 -I{} -n 1 rm {}"),
                     "1:find . | 1^:xargs -0 -I{} -n 1 | 1:rm {}");
    ck_assert_str_eq(sh("time -p rm"), "1^:time -p | 1:rm");
    ck_assert_str_eq(sh("sudo nohup nice timeout 5 A=1 /usr/bin/kill -9 1"),
                     "1^:sudo | 1^:nohup | 1^:nice | 1^:timeout 5 | 1:kill -9 1");
    ck_assert_str_eq(sh("sudo -l"), "1:sudo -l");
    /* an option's argument missing at the end (found by the fuzzer) */
    ck_assert_str_eq(sh("sudo -u\nls"), "1:sudo -u | 2:ls");
    ck_assert_str_eq(sh("timeout --signal"), "1:timeout --signal");
    ck_assert_str_eq(sh("env -S 'rm -rf /' x"), "1:rm -rf / | 1^:env -S rm -rf / | 1:x");
}
END_TEST

START_TEST(sh_bash_c_scanned)
{
    ck_assert_str_eq(sh("bash -c 'rm -rf /; ls'"), "1:bash -c rm -rf /; ls | 1:rm -rf / | 1:ls");
    ck_assert_str_eq(sh("/bin/sh -ec \"echo \\\"\\$(reboot)\\\"\""),
                     "1:sh -ec echo \"$(reboot)\" | 1:reboot | 1:echo $(...)");
    ck_assert(found("bash -o pipefail -c 'shutdown now'", SX_SCAN_SH, "shutdown"));
    ck_assert(found("sudo bash -c \"sh -c 'halt'\"", SX_SCAN_SH, "halt"));
    ck_assert(!found("bash script.sh rm", SX_SCAN_SH, "rm"));
    ck_assert(found("eval 'rm' -rf /", SX_SCAN_SH, "rm"));
    ck_assert(found("find / -name x -exec rm -f {} \\;", SX_SCAN_SH, "rm"));
}
END_TEST

START_TEST(sh_reserved_words)
{
    ck_assert_str_eq(sh("for f in $(ls); do rm $f; done"), "1:ls | 1:rm $f");
    ck_assert_str_eq(sh("case $x in a) rm a;; esac"), "1:rm a");
}
END_TEST

/* ---- python ---- */

START_TEST(py_os_system_and_popen)
{
    ck_assert_str_eq(py("import os\nos.system('rm -rf /')\n"), "2:rm -rf /");
    ck_assert_str_eq(py("os.popen(\"ls | sh\")"), "1:ls | 1:sh");
    ck_assert_str_eq(py("os.system(\n  'a; '\n  'b'\n)"), "2:a | 2:b");
    ck_assert_str_eq(py("os.system(f\"rm {path}\")"), "1:rm {path}");
}
END_TEST

START_TEST(py_subprocess_string_and_list)
{
    ck_assert_str_eq(py("subprocess.run('shutdown now', shell=True)"), "1:shutdown now");
    ck_assert_str_eq(py("subprocess.check_call(['rm', '-rf', '/'])"), "1:rm -rf /");
    ck_assert_str_eq(py("subprocess.Popen(('/sbin/reboot',))"), "1:reboot");
    ck_assert_str_eq(py("subprocess.check_output(['bash', '-c', 'halt'])"),
                     "1:bash -c halt | 1:halt");
    ck_assert_str_eq(py("from subprocess import run\nrun(['kill', '-9', '1'])"),
                     "2:kill -9 1");
    ck_assert_str_eq(py("subprocess.call(['sudo', 'rm', x])"), "1^:sudo | 1:rm");
}
END_TEST

START_TEST(py_not_resolvable_and_not_calls)
{
    ck_assert_str_eq(py("cmd = 'rm -rf /'\nos.system(cmd)"), "");
    ck_assert_str_eq(py("print('os.system(\"rm\")')  # os.system('rm')"), "");
    ck_assert_str_eq(py("x.system('rm')\nrun('rm')\n'''\nos.system('rm')\n'''"), "");
    ck_assert_str_eq(py("subprocess.run([c, 'x'])"), "");
}
END_TEST

/* ---- ruby ---- */

START_TEST(rb_system_exec_spawn)
{
    ck_assert_str_eq(rb("system(\"rm -rf /\")"), "1:rm -rf /");
    ck_assert_str_eq(rb("system 'ls'\nexec \"reboot\""), "1:ls | 2:reboot");
    ck_assert_str_eq(rb("system('rm', '-rf', '/')"), "1:rm -rf /");
    ck_assert_str_eq(rb("pid = spawn({'A' => 'b'}, 'halt')"), "1:halt");
    ck_assert_str_eq(rb("Process.spawn('a')\nKernel.system('b')"), "1:a | 2:b");
    ck_assert_str_eq(rb("system(*%w[rm -rf /])"), "1:rm -rf /");
}
END_TEST

START_TEST(rb_backticks_and_percent_x)
{
    ck_assert_str_eq(rb("x = `whoami`\ny = %x(id -u)\nz = %x{a | b}"),
                     "1:whoami | 2:id -u | 3:a | 3:b");
    ck_assert_str_eq(rb("x = %x(echo (nested))"), "1:echo | 1:nested");
    ck_assert_str_eq(rb("IO.popen(\"ls\")\nOpen3.capture2('rm x')"), "1:ls | 2:rm x");
}
END_TEST

START_TEST(rb_not_resolvable_and_not_calls)
{
    ck_assert_str_eq(rb("system(cmd)\n# system('rm')\nputs 'system(\"rm\")'"), "");
    ck_assert_str_eq(rb("x = <<~EOS\n  don't\nEOS\nsystem('rm')"), "4:rm");
    ck_assert_str_eq(rb("=begin\nsystem('a')\n=end\nsystem('b')"), "4:b");
    ck_assert_str_eq(rb("a = 10 % 3\nb = x =~ /it's/\nsystem('c')"), "3:c");
    ck_assert_str_eq(rb("conn.exec('SELECT 1')"), "");
}
END_TEST

/* ---- matching ---- */

START_TEST(match_exact_and_prefix)
{
    ck_assert_int_eq(match("rm", "rm -rf /"), 1);
    ck_assert_int_eq(match("rm", "rmdir x"), 0);
    ck_assert_int_eq(match("/bin/rm", "rm x"), 1);
    ck_assert_int_eq(match("mkfs*", "mkfs.ext4 /dev/sda"), 1);
    ck_assert_int_eq(match("mkfs*", "mkdir x"), 0);
    int m = 7;
    ck_assert_int_eq(sx_cmd_match("rm", NULL, 0, &m), 0);
    ck_assert_int_eq(m, 0);
}
END_TEST

START_TEST(match_multi_word)
{
    ck_assert_int_eq(match("kill -9", "kill -9 1"), 1);
    ck_assert_int_eq(match("kill -9", "kill 1 -9"), 1);
    ck_assert_int_eq(match("kill -9", "kill -15 1"), 0);
    ck_assert_int_eq(match("chmod +s", "chmod +s /bin/x"), 1);
    ck_assert_int_eq(match("chmod +s", "chmod 755 x"), 0);
    ck_assert_int_eq(match("rm -rf /", "rm -rf /"), 1);
    ck_assert_int_eq(match("rm -rf /", "rm -fr /"), 1);
    ck_assert_int_eq(match("rm -rf /", "rm -r -f /tmp /"), 1);
    ck_assert_int_eq(match("rm -rf /", "rm -rf /tmp"), 0);
    ck_assert_int_eq(match("rm -rf /", "rm -r /"), 0);
    ck_assert_int_eq(match("git --force", "git push --force=yes"), 1);
    ck_assert_int_eq(match("rm -rf /", "rm -- -rf /"), 0);
}
END_TEST

START_TEST(match_regex)
{
    ck_assert_int_eq(match("regex:^curl .*\\| *sh", "curl x | sh"), 1);
    ck_assert_int_eq(match("regex:^dd .*of=/dev/", "dd if=x of=/dev/sda"), 1);
    ck_assert_int_eq(match("regex:^dd .*of=/dev/", "dd if=/dev/zero of=x"), 0);
    const char *w[] = { "ls" };
    int m = 5;
    ck_assert_int_eq(sx_cmd_match("regex:([", w, 1, &m), -1);
    ck_assert_int_eq(m, 0);
    char err[200];
    ck_assert_int_eq(sx_cmd_pattern_check("regex:([", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "invalid regex"));
    ck_assert_int_eq(sx_cmd_pattern_check("rm -rf /", err, sizeof err), 0);
    ck_assert_int_eq(sx_cmd_pattern_check("", err, sizeof err), -1);
}
END_TEST

START_TEST(match_scanned_commands)
{
    sx_scan_result r;
    const char *s = "cd /tmp && sudo /bin/rm -fr / # bye";
    ck_assert_int_eq(sx_scan(s, strlen(s), SX_SCAN_SH, &r), 0);
    int hits = 0;
    for (size_t i = 0; i < r.ncmds; i++) {
        int m;
        ck_assert_int_eq(sx_cmd_match("rm -rf /", (const char *const *)r.cmds[i].words,
                                      r.cmds[i].nwords, &m), 0);
        hits += m;
    }
    ck_assert_int_eq(hits, 1);
    sx_scan_result_free(&r);
}
END_TEST

/* ---- hostile input ---- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

START_TEST(hostile_unterminated)
{
    const char *cases[] = { "echo 'abc", "echo \"abc", "echo $(rm", "echo `rm", "cat <<EOF\nx",
                            "echo ${x", "echo $((1+", "a \\", "$'\\x", "bash -c", "f(",
                            ")))", "<<", "<", "os.system(\"rm", "system(%x(", "`", "%x",
                            "subprocess.run(['a'", "x = <<~E\n", "'''", "r'", "=begin" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int l = 0; l < 3; l++) {
            sx_scan_result r;
            int rc = sx_scan(cases[i], strlen(cases[i]), (sx_scan_lang)l, &r);
            ck_assert_int_eq(rc, 0);
            sx_scan_result_free(&r);
        }
    ck_assert_str_eq(sh("echo $(rm -rf /"), "1:rm -rf / | 1:echo $(...)");
    ck_assert(found("echo 'x\nrm", SX_SCAN_SH, "echo"));
}
END_TEST

START_TEST(hostile_deep_nesting_refused)
{
    const char *opens[] = { "(", "$(", "{ (", "bash -c '" };
    size_t n = 10000;
    char *s = malloc(n * 10 + 16);
    for (size_t k = 0; k < 3; k++) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(s + o, "%s", opens[k]);
        o += (size_t)sprintf(s + o, "rm");
        for (size_t i = 0; i < n; i++)
            s[o++] = ')';
        double t0 = now();
        sx_scan_result r;
        ck_assert_int_eq(sx_scan(s, o, SX_SCAN_SH, &r), -1);
        sx_scan_result_free(&r);
        ck_assert(now() - t0 < 2.0);
    }
    /* nesting within the limit is fine */
    size_t o = 0;
    for (size_t i = 0; i < 30; i++)
        s[o++] = '(';
    memcpy(s + o, "rm", 2);
    o += 2;
    ck_assert_str_eq(dump_n(s, o, SX_SCAN_SH), "1:rm");
    free(s);
}
END_TEST

START_TEST(hostile_limits)
{
    /* more than SX_SCAN_MAX_COMMANDS commands */
    size_t n = SX_SCAN_MAX_COMMANDS + 10;
    char *s = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = 'a';
        s[2 * i + 1] = ';';
    }
    sx_scan_result r;
    ck_assert_int_eq(sx_scan(s, n * 2, SX_SCAN_SH, &r), -1);
    sx_scan_result_free(&r);
    ck_assert_int_eq(sx_scan(s, (SX_SCAN_MAX_COMMANDS - 1) * 2, SX_SCAN_SH, &r), 0);
    ck_assert_uint_eq(r.ncmds, SX_SCAN_MAX_COMMANDS - 1);
    sx_scan_result_free(&r);
    free(s);
    /* too many wrappers, too many heredocs */
    char buf[400] = "";
    for (int i = 0; i < 20; i++)
        strcat(buf, "nohup ");
    strcat(buf, "rm");
    ck_assert_int_eq(sx_scan(buf, strlen(buf), SX_SCAN_SH, &r), -1);
    sx_scan_result_free(&r);
    strcpy(buf, "cat");
    for (int i = 0; i < 20; i++)
        strcat(buf, " <<E");
    ck_assert_int_eq(sx_scan(buf, strlen(buf), SX_SCAN_SH, &r), -1);
    sx_scan_result_free(&r);
}
END_TEST

START_TEST(hostile_one_megabyte_line)
{
    size_t n = 1 << 20;
    char *s = malloc(n);
    const char *fills = "a'\"`$(\\ ;|{[#%x/";
    for (size_t k = 0; fills[k]; k++) {
        memset(s, fills[k], n);
        memcpy(s, "echo ", 5);
        double t0 = now();
        for (int l = 0; l < 3; l++) {
            sx_scan_result r;
            int rc = sx_scan(s, n, (sx_scan_lang)l, &r);
            ck_assert(rc == 0 || rc == -1);
            sx_scan_result_free(&r);
        }
        ck_assert_msg(now() - t0 < 5.0, "fill '%c' took too long", fills[k]);
    }
    /* a legitimate long line still scans */
    memset(s, 'x', n);
    memcpy(s, "rm ", 3);
    sx_scan_result r;
    ck_assert_int_eq(sx_scan(s, n, SX_SCAN_SH, &r), 0);
    ck_assert_uint_eq(r.ncmds, 1);
    ck_assert_uint_eq(strlen(r.cmds[0].words[1]), n - 3);
    sx_scan_result_free(&r);
    free(s);
}
END_TEST

START_TEST(hostile_nul_bytes)
{
    const char s[] = "ls\0rm -rf /\n'\0'\0\nos.system('a\0b')\nsystem(\"\0\")";
    for (int l = 0; l < 3; l++) {
        sx_scan_result r;
        ck_assert_int_eq(sx_scan(s, sizeof s - 1, (sx_scan_lang)l, &r), 0);
        sx_scan_result_free(&r);
    }
    /* bash drops NUL bytes: so does the shell scan */
    const char t[] = "r\0m -rf /\n'r\0m'";
    ck_assert_str_eq(dump_n(t, sizeof t - 1, SX_SCAN_SH), "1:rm -rf / | 2:rm");
}
END_TEST

START_TEST(bad_arguments)
{
    sx_scan_result r;
    ck_assert_int_eq(sx_scan(NULL, 0, SX_SCAN_SH, &r), 0);
    ck_assert_uint_eq(r.ncmds, 0);
    ck_assert_int_eq(sx_scan(NULL, 5, SX_SCAN_SH, &r), -1);
    ck_assert_int_eq(sx_scan("ls", 2, (sx_scan_lang)42, &r), -1);
    ck_assert_int_eq(sx_scan("ls", 2, SX_SCAN_SH, NULL), -1);
    sx_scan_result_free(NULL);
    ck_assert_int_eq(sx_cmd_match("rm", NULL, 0, NULL), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("script_scan");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sh_simple_and_operators);
    tcase_add_test(tc, sh_groups_and_subshells);
    tcase_add_test(tc, sh_command_substitution_nested);
    tcase_add_test(tc, sh_quoted_text_is_not_a_command);
    tcase_add_test(tc, sh_quotes_removed_from_words);
    tcase_add_test(tc, sh_comments_skipped);
    tcase_add_test(tc, sh_heredoc_bodies_skipped);
    tcase_add_test(tc, sh_redirections_not_words);
    tcase_add_test(tc, sh_line_numbers);
    tcase_add_test(tc, sh_paths_reduced_to_basename);
    tcase_add_test(tc, sh_assignments_skipped);
    tcase_add_test(tc, sh_wrappers);
    tcase_add_test(tc, sh_bash_c_scanned);
    tcase_add_test(tc, sh_reserved_words);
    tcase_add_test(tc, py_os_system_and_popen);
    tcase_add_test(tc, py_subprocess_string_and_list);
    tcase_add_test(tc, py_not_resolvable_and_not_calls);
    tcase_add_test(tc, rb_system_exec_spawn);
    tcase_add_test(tc, rb_backticks_and_percent_x);
    tcase_add_test(tc, rb_not_resolvable_and_not_calls);
    tcase_add_test(tc, match_exact_and_prefix);
    tcase_add_test(tc, match_multi_word);
    tcase_add_test(tc, match_regex);
    tcase_add_test(tc, match_scanned_commands);
    tcase_add_test(tc, hostile_unterminated);
    tcase_add_test(tc, hostile_deep_nesting_refused);
    tcase_add_test(tc, hostile_limits);
    tcase_add_test(tc, hostile_one_megabyte_line);
    tcase_add_test(tc, hostile_nul_bytes);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
