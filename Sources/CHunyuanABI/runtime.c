#include "hy_abi.h"

#include <string.h>

#define HYI_ERROR_CAPACITY 4096

static _Thread_local char hyi_error[HYI_ERROR_CAPACITY];

const char *hy_last_error(void) { return hyi_error; }

void hyi_set_error(const char *message) {
    if (message == NULL) message = "unknown error";
    size_t n = strlen(message);
    if (n >= HYI_ERROR_CAPACITY) {
        n = HYI_ERROR_CAPACITY - 1;
        /* do not cut a UTF-8 sequence in half: back up to a lead byte */
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80) n--;
    }
    memcpy(hyi_error, message, n);
    hyi_error[n] = '\0';
}
