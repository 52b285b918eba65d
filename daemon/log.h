/*
 * log: one line per event on stderr.  When stderr is the systemd journal
 * (JOURNAL_STREAM names stderr's device and inode) each line carries the
 * "<N>" syslog priority prefix.  Thread-safe: each line is one write(2).
 */
#ifndef JOBD_LOG_H
#define JOBD_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Detect the journal and set the threshold; call once before threads start. */
void	 log_init(enum log_level);
void	 log_set_level(enum log_level);
/* Parse "error", "warning", "info", "debug"; -1 when unknown. */
int	 log_level_parse(const char *);
const char *log_level_name(enum log_level);
/* Whether a message at this level would be written (check before formatting). */
int	 log_enabled(enum log_level);

void	 log_msg(enum log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	do {						\
	if (log_enabled(LOG_LEVEL_DEBUG))				\
		log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);			\
} while (0)

/* Log at error level and exit(status): only at start-up. */
void	 log_fatalx(int status, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));

#endif
