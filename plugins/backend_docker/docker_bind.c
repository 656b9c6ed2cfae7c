/*
 * docker_bind.c - script delivery "bind": for a daemon that shares the
 * host's filesystem (a local unix socket), the files of each planned volume
 * (the script, each secret/configmap mount) are written into
 * <bind_dir>/<container name>/v<i>/ and bind-mounted read-only, which
 * spares the archive API call (the Engine mounts the container's root
 * filesystem for it).
 *
 *   bind_dir        0711, created at instance start if missing
 *   <name>/         0711, ours
 *   <name>/v<i>/    0755 (the mount's root), subdirectories 0755
 *   files           the planned mode; owner root and the container's group
 *                   when the host runs as root and the group is known,
 *                   else ours and world-readable
 *
 * Everything below bind_dir is opened relative to a directory descriptor
 * with O_NOFOLLOW: a symlink there is never followed.  When the run ends
 * the tree is overwritten with zeros and removed.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "sx/sx_util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* item paths are at most 200 bytes: far fewer levels than this */
#define MAX_DEPTH 128

/* Root and the container's group (as the archive's tar headers say), or
 * our own ownership and world-readable. */
static int as_root_gid(const sx_dk_plan *plan)
{
    return geteuid() == 0 && plan->gid_known;
}

unsigned sx_dk_bind_file_mode(const sx_dk_plan *plan, unsigned mode)
{
    return as_root_gid(plan) ? mode : mode | 0444;
}

static int set_owner_mode(int fd, const sx_dk_plan *plan, unsigned mode)
{
    if (as_root_gid(plan) && fchown(fd, 0, (gid_t)plan->gid) != 0)
        return -1;
    return fchmod(fd, sx_dk_bind_file_mode(plan, mode));
}

/* dir/name as a directory (created 0755 unless it exists: an earlier file
 * of the same volume made it); a descriptor or -1. */
static int subdir(int dir, const char *name, const sx_dk_plan *plan)
{
    int made = mkdirat(dir, name, 0700) == 0;
    if (!made && errno != EEXIST)
        return -1;
    int fd = openat(dir, name, DIR_FLAGS);
    if (fd >= 0 && made && set_owner_mode(fd, plan, 0755) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* One file below the volume's directory; -1 with errno. */
static int write_file(int vdir, const sx_dk_file *f, const sx_dk_plan *plan)
{
    char path[512];
    if (strlen(f->path) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(path, sizeof path, "%s", f->path);
    int d = vdir, rc = -1, e = 0;
    char *s = path, *slash;
    while ((slash = strchr(s, '/')) != NULL) {
        *slash = '\0';
        int nd = subdir(d, s, plan);
        e = errno;
        if (d != vdir)
            close(d);
        if (nd < 0) {
            errno = e;
            return -1;
        }
        d = nd;
        s = slash + 1;
    }
    int fd = openat(d, s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        rc = sx_write_all(fd, f->data, f->len) == 0 && set_owner_mode(fd, plan, f->mode) == 0
                 ? 0 : -1;
        e = errno;
        close(fd);
    } else {
        e = errno;
    }
    if (d != vdir)
        close(d);
    errno = e;
    return rc;
}

int sx_dk_bind_write(const sx_docker_instance *inst, const sx_dk_plan *plan, const char *name,
                     cJSON *mounts, int *made, sx_error *err)
{
    const char *base = inst->cfg.bind_dir;
    *made = 0;
    int root = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return sx_error_set(err, "backend_error", "cannot open bind_dir %s: %s", base,
                            strerror(errno));
    int run = -1, rc = -1;
    if (mkdirat(root, name, 0700) != 0) {
        sx_error_set(err, "backend_error", "cannot create %s/%s: %s", base, name, strerror(errno));
        goto out;
    }
    *made = 1;
    run = openat(root, name, DIR_FLAGS);
    if (run < 0 || fchmod(run, 0711) != 0) {
        sx_error_set(err, "backend_error", "cannot open %s/%s: %s", base, name, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < plan->n_volumes; i++) {
        const sx_dk_volume *v = &plan->volumes[i];
        char vname[32], src[600];
        snprintf(vname, sizeof vname, "v%zu", i);
        snprintf(src, sizeof src, "%s/%s/%s", base, name, vname);
        int vd = mkdirat(run, vname, 0700) == 0 ? openat(run, vname, DIR_FLAGS) : -1;
        if (vd < 0 || set_owner_mode(vd, plan, 0755) != 0) {
            sx_error_set(err, "backend_error", "cannot create %s: %s", src, strerror(errno));
            if (vd >= 0)
                close(vd);
            goto out;
        }
        for (size_t j = 0; j < v->n_files; j++) {
            if (write_file(vd, &v->files[j], plan) == 0)
                continue;
            if (errno == EEXIST || errno == ENOTDIR)
                sx_error_set(err, "invalid_parameter", "the files of the %s: '%s' clashes with "
                             "another file of the same mount", v->what, v->files[j].path);
            else
                sx_error_set(err, "backend_error", "cannot write '%s' of the %s into %s: %s",
                             v->files[j].path, v->what, src, strerror(errno));
            close(vd);
            goto out;
        }
        close(vd);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "Type", "bind");
        cJSON_AddStringToObject(m, "Source", src);
        cJSON_AddStringToObject(m, "Target", v->mount_path);
        cJSON_AddBoolToObject(m, "ReadOnly", 1);
        cJSON_AddItemToArray(mounts, m);
    }
    rc = 0;
out:
    if (run >= 0)
        close(run);
    close(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Removal                                                              */
/* ------------------------------------------------------------------ */

/* Overwrite a regular file with zeros (its pages are freed by the unlink
 * that follows; the secret must not stay in them). */
static void zero_file(int dir, const char *name, const struct stat *st)
{
    int fd = openat(dir, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == EACCES && fchmodat(dir, name, 0600, AT_SYMLINK_NOFOLLOW) == 0)
        fd = openat(dir, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    struct stat now;
    if (fstat(fd, &now) == 0 && S_ISREG(now.st_mode) && now.st_ino == st->st_ino &&
        now.st_dev == st->st_dev) {
        static const char zeros[65536];
        for (off_t left = now.st_size; left > 0;) {
            size_t n = left > (off_t)sizeof zeros ? sizeof zeros : (size_t)left;
            if (sx_write_all(fd, zeros, n) != 0)
                break;
            left -= (off_t)n;
        }
    }
    close(fd);
}

static int remove_entry(int dir, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) {
        if (S_ISREG(st.st_mode) && st.st_size > 0)
            zero_file(dir, name, &st);
        return unlinkat(dir, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    }
    if (depth >= MAX_DEPTH)
        return -1;
    int fd = openat(dir, name, DIR_FLAGS);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (remove_entry(dirfd(d), e->d_name, depth + 1) != 0)
            rc = -1;
    }
    closedir(d);
    if (unlinkat(dir, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int sx_dk_bind_remove(const sx_docker_instance *inst, const char *name)
{
    int root = open(inst->cfg.bind_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = remove_entry(root, name, 0);
    close(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* bind_dir itself, leftovers                                           */
/* ------------------------------------------------------------------ */

static int bad_dir(sx_error *err, const sx_docker_instance *inst, const char *why, int e)
{
    return sx_error_set(err, "invalid_config", "executor '%s': bind_dir: %s %s%s%s", inst->name,
                        inst->cfg.bind_dir, why, e ? ": " : "", e ? strerror(e) : "");
}

int sx_dk_bind_dir_init(sx_docker_instance *inst, sx_error *err)
{
    clock_gettime(CLOCK_REALTIME_COARSE, &inst->bind_epoch);
    const char *dir = inst->cfg.bind_dir;
    char path[512];
    snprintf(path, sizeof path, "%s", dir);
    /* missing parents as mkdir -p makes them, the directory itself 0711 */
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return bad_dir(err, inst, "cannot be created", errno);
        *s = '/';
    }
    if (mkdir(dir, 0711) == 0) {
        if (chmod(dir, 0711) != 0) /* past the umask */
            return bad_dir(err, inst, "cannot be made 0711", errno);
    } else if (errno != EEXIST) {
        return bad_dir(err, inst, "cannot be created", errno);
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return bad_dir(err, inst, "cannot be read", errno);
    if (!S_ISDIR(st.st_mode))
        return bad_dir(err, inst, "is not a directory", 0);
    if (st.st_mode & 022)
        return bad_dir(err, inst, "is writable by other users, who could swap a script for "
                                  "theirs (make it 0711)", 0);
    struct statfs fs;
    if (statfs(dir, &fs) == 0 && fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC)
        inst->plugin->host->log(inst->plugin->ctx, SX_LOG_WARN,
                                "executor %s: bind_dir %s is not on a tmpfs: secret files are "
                                "written to disk there for the length of a run", inst->name, dir);
    return 0;
}

static int hex16(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 16;
}

int sx_dk_bind_stale(const sx_docker_instance *inst, sx_strlist *names)
{
    char prefix[64];
    sx_dk_name_prefix(inst, prefix, sizeof prefix);
    size_t pl = strlen(prefix);
    int root = open(inst->cfg.bind_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = root >= 0 ? fdopendir(root) : NULL;
    if (d == NULL) {
        int e = errno;
        if (root >= 0)
            close(root);
        return e == ENOENT ? 0 : -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(e->d_name, prefix, pl) != 0 || !hex16(e->d_name + pl) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        /* changed since this instance started: a run in progress (its
         * container may not exist yet) */
        if (st.st_ctim.tv_sec > inst->bind_epoch.tv_sec ||
            (st.st_ctim.tv_sec == inst->bind_epoch.tv_sec &&
             st.st_ctim.tv_nsec >= inst->bind_epoch.tv_nsec))
            continue;
        char *copy = strdup(e->d_name);
        char **v = copy ? realloc(names->v, (names->n + 1) * sizeof *v) : NULL;
        if (v == NULL) {
            free(copy);
            rc = -1;
            break;
        }
        names->v = v;
        names->v[names->n++] = copy;
    }
    closedir(d);
    return rc;
}
