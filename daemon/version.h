/* version: the one place jobd's version string is written. */
#ifndef JOBD_VERSION_H
#define JOBD_VERSION_H

#define JOBD_VERSION "0.1.0"

#endif
