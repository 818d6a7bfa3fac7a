from textutil import slugfy


def post_url(title):
    return "/posts/" + slugfy(title)


def tag_urls(tags):
    return ["/tags/" + slugfy(t) for t in tags]
