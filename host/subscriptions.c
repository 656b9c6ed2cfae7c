/* subscriptions.c - plugins' bus subscriptions (see subscriptions.h). */
#define _POSIX_C_SOURCE 200809L
#include "subscriptions.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

/* One queued event: "topic\0json\0" in one allocation. */
typedef struct sx_sub_event {
    struct sx_sub_event *next;
    size_t size;                /* bytes counted against max_bytes */
    const char *json;           /* points into data */
    char data[];                /* topic, NUL, json, NUL */
} sx_sub_event;

typedef struct sx_sub {
    struct sx_subs *set;
    char *owner;
    char *prefix;
    size_t prefix_len;
    sx_event_fn fn;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t wake;
    sx_sub_event *head, *tail;
    size_t queued;
    size_t queued_bytes;
    unsigned long long delivered;
    unsigned long long dropped;
    int stopping;
} sx_sub;

struct sx_subs {
    size_t max_events;
    size_t max_bytes;
    sx_sub *v[SX_SUBS_MAX];     /* written by the main thread before publishing starts */
    atomic_size_t n;
    atomic_int stopped;
    pthread_mutex_t stop_lock;  /* one sx_subs_stop at a time */
};

struct sx_subs *sx_subs_create(size_t max_events, size_t max_bytes)
{
    struct sx_subs *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->max_events = max_events ? max_events : 1;
    s->max_bytes = max_bytes ? max_bytes : 1;
    atomic_init(&s->n, 0);
    atomic_init(&s->stopped, 0);
    pthread_mutex_init(&s->stop_lock, NULL);
    return s;
}

static void *sub_main(void *arg)
{
    sx_sub *sub = arg;
    pthread_mutex_lock(&sub->lock);
    for (;;) {
        while (sub->head == NULL && !sub->stopping)
            pthread_cond_wait(&sub->wake, &sub->lock);
        sx_sub_event *ev = sub->head;
        if (ev == NULL)
            break; /* stopping, and everything queued was delivered */
        sub->head = ev->next;
        if (sub->head == NULL)
            sub->tail = NULL;
        sub->queued--;
        sub->queued_bytes -= ev->size;
        pthread_mutex_unlock(&sub->lock);
        sub->fn(sub->arg, ev->data, ev->json);
        free(ev);
        pthread_mutex_lock(&sub->lock);
        sub->delivered++;
    }
    pthread_mutex_unlock(&sub->lock);
    return NULL;
}

static void sub_free(sx_sub *sub)
{
    sx_sub_event *ev = sub->head;
    while (ev) {
        sx_sub_event *next = ev->next;
        free(ev);
        ev = next;
    }
    pthread_cond_destroy(&sub->wake);
    pthread_mutex_destroy(&sub->lock);
    free(sub->owner);
    free(sub->prefix);
    free(sub);
}

int sx_subs_add(struct sx_subs *s, const char *owner, const char *prefix, sx_event_fn fn,
                void *arg, sx_error *err)
{
    if (fn == NULL)
        return sx_error_set(err, "invalid_config", "bus_subscribe: the event function is NULL");
    if (atomic_load(&s->stopped))
        return sx_error_set(err, "invalid_config", "bus_subscribe: the host is shutting down");
    size_t n = atomic_load(&s->n);
    if (n == SX_SUBS_MAX)
        return sx_error_set(err, "invalid_config",
                            "bus_subscribe: %d subscriptions already exist (the host's limit)",
                            SX_SUBS_MAX);
    sx_sub *sub = calloc(1, sizeof *sub);
    if (sub == NULL)
        return sx_error_set(err, "out_of_memory", "bus_subscribe: out of memory");
    sub->set = s;
    sub->owner = strdup(owner ? owner : "");
    sub->prefix = strdup(prefix ? prefix : "");
    sub->prefix_len = sub->prefix ? strlen(sub->prefix) : 0;
    sub->fn = fn;
    sub->arg = arg;
    pthread_mutex_init(&sub->lock, NULL);
    pthread_cond_init(&sub->wake, NULL);
    if (sub->owner == NULL || sub->prefix == NULL) {
        sub_free(sub);
        return sx_error_set(err, "out_of_memory", "bus_subscribe: out of memory");
    }
    if (pthread_create(&sub->thread, NULL, sub_main, sub) != 0) {
        sub_free(sub);
        return sx_error_set(err, "out_of_memory", "bus_subscribe: cannot start a thread");
    }
    s->v[n] = sub;
    atomic_store(&s->n, n + 1); /* publishers see the slot only once it is filled */
    return 0;
}

/* Drop the oldest event; caller holds the lock and the queue is not empty. */
static void drop_oldest(sx_sub *sub)
{
    sx_sub_event *old = sub->head;
    sub->head = old->next;
    if (sub->head == NULL)
        sub->tail = NULL;
    sub->queued--;
    sub->queued_bytes -= old->size;
    sub->dropped++;
    free(old);
}

static void sub_push(sx_sub *sub, const char *topic, size_t tl, const char *json, size_t jl)
{
    size_t max_events = sub->set->max_events, max_bytes = sub->set->max_bytes;
    size_t size = tl + jl + 2;
    if (size > max_bytes) { /* could never fit: lost like a dropped one */
        pthread_mutex_lock(&sub->lock);
        sub->dropped++;
        pthread_mutex_unlock(&sub->lock);
        return;
    }
    sx_sub_event *ev = malloc(sizeof *ev + size);
    if (ev == NULL) {
        pthread_mutex_lock(&sub->lock);
        sub->dropped++;
        pthread_mutex_unlock(&sub->lock);
        return;
    }
    ev->next = NULL;
    ev->size = size;
    memcpy(ev->data, topic, tl);
    ev->data[tl] = '\0';
    memcpy(ev->data + tl + 1, json, jl);
    ev->data[tl + 1 + jl] = '\0';
    ev->json = ev->data + tl + 1;
    pthread_mutex_lock(&sub->lock);
    if (sub->stopping) {
        pthread_mutex_unlock(&sub->lock);
        free(ev);
        return;
    }
    while (sub->head && (sub->queued + 1 > max_events || sub->queued_bytes + size > max_bytes))
        drop_oldest(sub);
    if (sub->tail)
        sub->tail->next = ev;
    else
        sub->head = ev;
    sub->tail = ev;
    sub->queued++;
    sub->queued_bytes += size;
    pthread_cond_signal(&sub->wake);
    pthread_mutex_unlock(&sub->lock);
}

void sx_subs_publish(struct sx_subs *s, const char *topic, const char *json)
{
    if (s == NULL || topic == NULL || json == NULL || atomic_load(&s->stopped))
        return;
    size_t n = atomic_load(&s->n);
    size_t tl = strlen(topic), jl = 0;
    int measured = 0;
    for (size_t i = 0; i < n; i++) {
        sx_sub *sub = s->v[i];
        if (strncmp(topic, sub->prefix, sub->prefix_len) != 0)
            continue;
        if (!measured) {
            jl = strlen(json);
            measured = 1;
        }
        sub_push(sub, topic, tl, json, jl);
    }
}

void sx_subs_stop(struct sx_subs *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->stop_lock);
    if (atomic_exchange(&s->stopped, 1) == 0) {
        size_t n = atomic_load(&s->n);
        for (size_t i = 0; i < n; i++) {
            sx_sub *sub = s->v[i];
            pthread_mutex_lock(&sub->lock);
            sub->stopping = 1;
            pthread_cond_signal(&sub->wake);
            pthread_mutex_unlock(&sub->lock);
        }
        for (size_t i = 0; i < n; i++)
            pthread_join(s->v[i]->thread, NULL);
    }
    pthread_mutex_unlock(&s->stop_lock);
}

cJSON *sx_subs_describe(struct sx_subs *s)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = s ? atomic_load(&s->n) : 0;
    for (size_t i = 0; i < n; i++) {
        sx_sub *sub = s->v[i];
        pthread_mutex_lock(&sub->lock);
        unsigned long long delivered = sub->delivered, dropped = sub->dropped;
        size_t queued = sub->queued;
        pthread_mutex_unlock(&sub->lock);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "plugin", sub->owner);
        cJSON_AddStringToObject(o, "prefix", sub->prefix);
        cJSON_AddNumberToObject(o, "delivered", (double)delivered);
        cJSON_AddNumberToObject(o, "dropped", (double)dropped);
        cJSON_AddNumberToObject(o, "queued", (double)queued);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

unsigned long long sx_subs_dropped(struct sx_subs *s)
{
    unsigned long long total = 0;
    size_t n = s ? atomic_load(&s->n) : 0;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&s->v[i]->lock);
        total += s->v[i]->dropped;
        pthread_mutex_unlock(&s->v[i]->lock);
    }
    return total;
}

void sx_subs_destroy(struct sx_subs *s)
{
    if (s == NULL)
        return;
    sx_subs_stop(s);
    size_t n = atomic_load(&s->n);
    for (size_t i = 0; i < n; i++)
        sub_free(s->v[i]);
    pthread_mutex_destroy(&s->stop_lock);
    free(s);
}
