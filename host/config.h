/*
 * config.h - the host's YAML configuration tree (libyaml).
 *
 * A YAML file is parsed into an immutable tree of nodes that remember their
 * line and their dotted path ("script_executor.executors[1].kind"), so every
 * error can name both.  Scalars are kept as text; their type is decided by
 * whoever reads them (sx_cfg_apply with an sx_option table).
 * All functions are thread-safe on a tree that is no longer being built.
 */
#ifndef SX_HOST_CONFIG_H
#define SX_HOST_CONFIG_H

#include "sx/sx_plugin.h"

/* Parse a YAML file / string whose top level is a map.  On success *root is
 * the root map (caller frees with sx_cfg_free); on failure err->code is
 * "invalid_config" and the message names the file and line.  Duplicate keys,
 * aliases/anchors and multi-document streams are refused. */
int sx_cfg_load_file(const char *path, sx_config_node **root, sx_error *err);
int sx_cfg_load_string(const char *yaml, const char *name, sx_config_node **root,
                       sx_error *err);
void sx_cfg_free(sx_config_node *root);

/* Read access (NULL-safe: a NULL node is SX_CFG_NONE with length 0). */
sx_config_kind sx_cfg_kind(const sx_config_node *node);
const char *sx_cfg_scalar(const sx_config_node *node);
size_t sx_cfg_len(const sx_config_node *node);
const sx_config_node *sx_cfg_at(const sx_config_node *node, size_t i);
const char *sx_cfg_key_at(const sx_config_node *node, size_t i);
const sx_config_node *sx_cfg_get(const sx_config_node *map, const char *key);
int sx_cfg_line(const sx_config_node *node);
const char *sx_cfg_path(const sx_config_node *node);

/* Apply an option table (see sx_option in sx_plugin.h) to a map node.
 * node NULL = defaults only.  Errors (err->code "invalid_config") name the
 * path and line: unknown key (listing the known ones), wrong type, missing
 * required key, bad duration/size/bool/int.  Release with
 * sx_cfg_options_free (also after failure). */
int sx_cfg_apply(const sx_config_node *node, const sx_option *options,
                 void *dst, sx_error *err);
void sx_cfg_options_free(const sx_option *options, void *dst);

/* Deep copy of map `node` without the listed keys (NULL-terminated), keeping
 * lines and paths.  Caller frees with sx_cfg_free. */
sx_config_node *sx_cfg_copy_without(const sx_config_node *node,
                                    const char *const *keys);

/* Parse a YAML 1.1 boolean (true/false/yes/no/on/off, any case). */
int sx_cfg_parse_bool(const char *text, int *value);

#endif /* SX_HOST_CONFIG_H */
